/** A page of a list, as the API returns it. */
export interface Page<T> {
  data: T[];
  /** Pass as `after` for the next page; `null` on the last page. */
  next_cursor: string | null;
  /**
   * Where the events feed stood when this page was read (every directory list answers it).
   * Load a snapshot, then follow `roster.events` from the first page's `event_cursor`:
   * nothing that changed during the snapshot is missed.
   */
  event_cursor?: string;
}

/**
 * What every list method returns: await it for one page, or iterate it with `for await` to get
 * every item of every page (pages are fetched as you go, one at a time).
 *
 * @example
 * ```ts
 * const first = await roster.organizations.listMembers({ organizationId, limit: 50 });
 * for await (const member of roster.organizations.listMembers({ organizationId })) {
 *   console.log(member.user.email, member.role);
 * }
 * ```
 */
export class PagePromise<T> implements PromiseLike<Page<T>>, AsyncIterable<T> {
  readonly #fetchPage: (after: string | undefined) => Promise<Page<T>>;
  readonly #after: string | undefined;
  #first: Promise<Page<T>> | undefined;

  constructor(fetchPage: (after: string | undefined) => Promise<Page<T>>, after?: string) {
    this.#fetchPage = fetchPage;
    this.#after = after;
  }

  #firstPage(): Promise<Page<T>> {
    this.#first ??= this.#fetchPage(this.#after);
    return this.#first;
  }

  // biome-ignore lint/suspicious/noThenProperty: a PagePromise is awaited like a Promise on purpose
  then<R1 = Page<T>, R2 = never>(
    onfulfilled?: ((value: Page<T>) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.#firstPage().then(onfulfilled, onrejected);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    let page = await this.#firstPage();
    for (;;) {
      for (const item of page.data) yield item;
      if (!page.next_cursor) return;
      page = await this.#fetchPage(page.next_cursor);
    }
  }

  /** Every item of every page, in an array (for small lists). */
  async toArray(): Promise<T[]> {
    const items: T[] = [];
    for await (const item of this) items.push(item);
    return items;
  }
}
