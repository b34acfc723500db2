import type { AttributeMapping, JsonObject } from '../db/schema.js';
import { isPlainObject, type ScimObject } from '../scim/core/resource.js';
import { SCHEMA_URNS } from '../scim/core/schemas.js';

/**
 * The indexed columns of a user, derived from its stored SCIM attributes. Filters, uniqueness and
 * the management API read the columns; GET /Users returns the attributes.
 */
export interface UserColumns {
  user_name: string;
  external_id: string | null;
  active: boolean;
  email: string | null;
  given_name: string | null;
  family_name: string | null;
  display_name: string | null;
}

const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/** Primary email, else the first `work` email, else the first email. */
export function primaryEmail(attributes: ScimObject): string | null {
  const emails = Array.isArray(attributes.emails) ? attributes.emails.filter(isPlainObject) : [];
  const chosen =
    emails.find((e) => e.primary === true) ??
    emails.find((e) => typeof e.type === 'string' && e.type.toLowerCase() === 'work') ??
    emails[0];
  return str(chosen?.value);
}

export function userColumns(attributes: ScimObject): UserColumns {
  const name = isPlainObject(attributes.name) ? attributes.name : {};
  return {
    user_name: str(attributes.userName) ?? '',
    external_id: str(attributes.externalId),
    active: attributes.active !== false,
    email: primaryEmail(attributes),
    given_name: str(name.givenName),
    family_name: str(name.familyName),
    display_name: str(attributes.displayName),
  };
}

/** The display name the management API shows: displayName, else name.formatted, else given + family. */
export function displayNameOf(attributes: ScimObject): string | null {
  const name = isPlainObject(attributes.name) ? attributes.name : {};
  const joined = [str(name.givenName), str(name.familyName)].filter(Boolean).join(' ');
  return str(attributes.displayName) ?? str(name.formatted) ?? (joined || null);
}

/** Reads `urn:…:User:department`, `name.givenName` or `title` from stored attributes. */
export function readAttributePath(attributes: ScimObject, path: string): unknown {
  let container: unknown = attributes;
  let rest = path;
  if (/^urn:/i.test(path)) {
    const colon = path.lastIndexOf(':');
    const uri = path.slice(0, colon);
    const key = Object.keys(attributes).find((k) => k.toLowerCase() === uri.toLowerCase());
    container = key === undefined ? undefined : attributes[key];
    rest = path.slice(colon + 1);
  }
  for (const part of rest.split('.')) {
    if (!isPlainObject(container)) return undefined;
    const key = Object.keys(container).find((k) => k.toLowerCase() === part.toLowerCase());
    container = key === undefined ? undefined : container[key];
  }
  return container;
}

/**
 * A member's metadata: every attribute of the Roster extension, plus the connection's attribute
 * mappings (e.g. enterprise `department` -> `department`).
 */
export function membershipMetadata(
  attributes: ScimObject,
  mappings: readonly AttributeMapping[],
): JsonObject {
  const roster = attributes[SCHEMA_URNS.rosterUser];
  const metadata: JsonObject = isPlainObject(roster) ? { ...roster } : {};
  for (const mapping of mappings) {
    const value = readAttributePath(attributes, mapping.attribute);
    if (value !== undefined && value !== null) metadata[mapping.key] = value;
  }
  return metadata;
}
