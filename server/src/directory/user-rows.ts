import type { JsonObject, UserRow } from '../db/schema.js';

/** The shapes of a user row as the SCIM reads and writes pass it between them. */

export interface GroupRef {
  value: string;
  display: string;
}

/** A user row with its groups (the read-only `groups` attribute), when they were asked for. */
export type UserWithGroups = UserRow & { groups?: GroupRef[] };

/** A user with its membership, as read (and locked) before a change. */
export interface LockedUser extends UserWithGroups {
  membership_id: string | null;
  membership_status: 'active' | 'inactive' | null;
  membership_metadata: JsonObject | null;
}
