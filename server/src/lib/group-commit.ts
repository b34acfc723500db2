/**
 * Group commit: the items submitted under one key while a batch of that key is in flight wait,
 * and then run together as the next batch, so that one statement (and one commit) does the work
 * of many. With no batch in flight an item runs at once, alone: nothing waits for a timer, and a
 * lone request costs what it did before. One batch per key is in flight at a time.
 *
 * `distinct` names what two items of one batch must not share (say, the row they change): an item
 * whose name is already in the batch waits for the next one, in its order. `run` answers one
 * outcome per item, in order, and writes all of a batch or none of it; when it throws for a batch
 * of several, each item runs again alone and gets its own outcome or error.
 *
 * `failTogether`: for a statement whose failure is never one item's doing (the database is gone or
 * slow, not this row): when it throws, every item of the batch and every item waiting for its key
 * get that error at once, instead of each running again alone after it (which, with a database
 * that times out, would make the last waiter wait one timeout per item ahead of it).
 * `maxWaiting`: past that many items waiting for one key, `submit` refuses with `overflow()`, as a
 * pool refuses past its queue limit: a stalled database must not pile up requests in memory.
 */
export class GroupCommit<K, T, R> {
  readonly #queues = new Map<K, Waiting<T, R>[]>();
  readonly #run: (key: K, items: T[]) => Promise<R[]>;
  readonly #distinct: (item: T) => string;
  readonly #max: number;
  readonly #failTogether: boolean;
  readonly #maxWaiting: number;
  readonly #overflow: () => Error;

  constructor(options: {
    run: (key: K, items: T[]) => Promise<R[]>;
    distinct: (item: T) => string;
    /** The most items in one batch. */
    max: number;
    failTogether?: boolean;
    maxWaiting?: number;
    overflow?: () => Error;
  }) {
    this.#run = options.run;
    this.#distinct = options.distinct;
    this.#max = options.max;
    this.#failTogether = options.failTogether ?? false;
    this.#maxWaiting = options.maxWaiting ?? Number.POSITIVE_INFINITY;
    this.#overflow = options.overflow ?? (() => new Error('too many items waiting'));
  }

  submit(key: K, item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const waiting = { item, resolve, reject };
      const queue = this.#queues.get(key);
      if (queue) {
        if (queue.length >= this.#maxWaiting) reject(this.#overflow());
        else queue.push(waiting);
        return;
      }
      const fresh = [waiting];
      this.#queues.set(key, fresh);
      void this.#drain(key, fresh);
    });
  }

  async #drain(key: K, queue: Waiting<T, R>[]): Promise<void> {
    while (queue.length > 0) {
      const batch = this.#take(queue);
      try {
        const outcomes = await this.#run(
          key,
          batch.map((w) => w.item),
        );
        for (const [i, w] of batch.entries()) w.resolve(outcomes[i]!);
      } catch (error) {
        if (this.#failTogether) {
          for (const w of batch.concat(queue.splice(0))) w.reject(error);
        } else if (batch.length === 1) batch[0]!.reject(error);
        // One item may be the cause (a timeout, conflicts that outlast the retries): each runs
        // again alone, so that only its own request fails. `run` is all or nothing, so nothing
        // of the failed batch was written.
        else for (const w of batch) await this.#runAlone(key, w);
      }
    }
    this.#queues.delete(key);
  }

  async #runAlone(key: K, waiting: Waiting<T, R>): Promise<void> {
    try {
      const [outcome] = await this.#run(key, [waiting.item]);
      waiting.resolve(outcome!);
    } catch (error) {
      waiting.reject(error);
    }
  }

  /** Removes and answers the next batch: up to `max` items, in order, none sharing a name. */
  #take(queue: Waiting<T, R>[]): Waiting<T, R>[] {
    const batch: Waiting<T, R>[] = [];
    const names = new Set<string>();
    const rest: Waiting<T, R>[] = [];
    for (const waiting of queue) {
      const name = this.#distinct(waiting.item);
      if (batch.length < this.#max && !names.has(name)) {
        names.add(name);
        batch.push(waiting);
      } else {
        rest.push(waiting);
      }
    }
    queue.splice(0, queue.length, ...rest);
    return batch;
  }
}

interface Waiting<T, R> {
  item: T;
  resolve: (outcome: R) => void;
  reject: (error: unknown) => void;
}
