import type { ComponentChildren } from 'preact';
import type { Schemas } from '../../contract.js';

/**
 * The identity providers the portal guides through, with the exact fields where the SCIM base
 * URL and the token go. What each IdP sends is covered by the SCIM tests (server/test/scim-*).
 */

export type Provider = Schemas['Provider'];

export interface ProviderGuide {
  id: Provider;
  name: string;
  /** False when the IdP cannot push SCIM to an app like this one (Google Workspace). */
  canConnect: boolean;
  /** The base URL as this IdP should be given it. */
  baseUrl(base: string): string;
  steps(values: { baseUrl: string; token: ComponentChildren }): ComponentChildren[];
  note?: ComponentChildren;
}

const asIs = (base: string) => base;

export const PROVIDERS: readonly ProviderGuide[] = [
  {
    id: 'okta',
    name: 'Okta',
    canConnect: true,
    baseUrl: asIs,
    steps: ({ baseUrl, token }) => [
      <>
        In the Okta Admin Console open <b>Applications → Applications</b>, then your app for this service (or{' '}
        <b>Create App Integration → SAML 2.0</b>). On its <b>General</b> tab, under <b>App Settings</b>, click{' '}
        <b>Edit</b>, set <b>Provisioning</b> to <b>SCIM</b> and save.
      </>,
      <>
        On the <b>Provisioning</b> tab, <b>Integration → Edit</b>: <b>SCIM connector base URL</b> ={' '}
        <code>{baseUrl}</code>; <b>Unique identifier field for users</b> = <code>userName</code>;{' '}
        <b>Supported provisioning actions</b>: Push New Users, Push Profile Updates, Push Groups;{' '}
        <b>Authentication Mode</b> = <b>HTTP Header</b>; <b>Authorization</b> = {token}.
      </>,
      <>
        Click <b>Test Connector Configuration</b>, then <b>Save</b>. Under <b>Provisioning → To App → Edit</b>{' '}
        enable <b>Create Users</b>, <b>Update User Attributes</b> and <b>Deactivate Users</b>.
      </>,
      <>
        On <b>Assignments</b>, assign the people (or groups) who should have access. On <b>Push Groups</b>,
        push the groups you want to give roles to.
      </>,
    ],
  },
  {
    id: 'entra',
    name: 'Microsoft Entra ID',
    canConnect: true,
    baseUrl: (base) => `${base}?aadOptscim062020`,
    steps: ({ baseUrl, token }) => [
      <>
        In the Microsoft Entra admin center open{' '}
        <b>Enterprise applications → New application → Create your own application</b>, name it, and choose{' '}
        <b>Integrate any other application you don't find in the gallery (Non-gallery)</b>.
      </>,
      <>
        In the new app open <b>Provisioning</b> and set <b>Provisioning Mode</b> to <b>Automatic</b>. Under{' '}
        <b>Admin Credentials</b>: <b>Tenant URL</b> = <code>{baseUrl}</code> and <b>Secret Token</b> = {token}
        . Click <b>Test Connection</b>, then <b>Save</b>.
      </>,
      <>
        Keep the default <b>Mappings</b> (userPrincipalName → userName, mail → emails, objectId → externalId
        for groups).
      </>,
      <>
        Under <b>Users and groups</b>, assign the people and groups who should have access. Back in{' '}
        <b>Provisioning</b>, set <b>Provisioning Status</b> to <b>On</b> and save. Entra starts a cycle within
        about 40 minutes; <b>Provision on demand</b> sends one user right away.
      </>,
    ],
    note: (
      <>
        The Tenant URL ends in <code>?aadOptscim062020</code>. That flag makes Entra follow the SCIM standard
        for updates (lower-case operations, real true/false values, removing a member by id). Roster accepts
        Entra's older format too, so an existing setup without the flag keeps working.
      </>
    ),
  },
  {
    id: 'google',
    name: 'Google Workspace',
    canConnect: false,
    baseUrl: asIs,
    steps: () => [],
    note: (
      <>
        Google Workspace cannot push SCIM to a custom app like this one today: its automatic provisioning only
        works for apps in Google's own catalog. If you sync Google Workspace through another tool that speaks
        SCIM 2.0 (or use another identity provider for this app), choose that instead.
      </>
    ),
  },
  {
    id: 'onelogin',
    name: 'OneLogin',
    canConnect: true,
    baseUrl: asIs,
    steps: ({ baseUrl, token }) => [
      <>
        In OneLogin open <b>Applications → Add App</b>, search for{' '}
        <b>SCIM Provisioner with SAML (SCIM v2 Enterprise)</b> and save it.
      </>,
      <>
        On its <b>Configuration</b> tab: <b>SCIM Base URL</b> = <code>{baseUrl}</code>;{' '}
        <b>SCIM Bearer Token</b> = {token}. Under <b>API Connection</b> click <b>Enable</b>, then <b>Save</b>.
      </>,
      <>
        On the <b>Provisioning</b> tab tick <b>Enable provisioning</b> and choose what happens when a user is
        deleted or suspended in OneLogin (<b>Delete</b> or <b>Suspend</b> both end their access here).
      </>,
      <>
        Assign users on the <b>Users</b> tab (or with rules). To send groups, open <b>Parameters → Groups</b>{' '}
        and tick <b>Include in User Provisioning</b>.
      </>,
    ],
  },
  {
    id: 'jumpcloud',
    name: 'JumpCloud',
    canConnect: true,
    baseUrl: asIs,
    steps: ({ baseUrl, token }) => [
      <>
        In the JumpCloud Admin Portal open <b>SSO Applications</b> and your app for this service (or{' '}
        <b>+ Add New Application → Custom Application</b>, ticking{' '}
        <b>Export users to this app (Identity Management)</b>).
      </>,
      <>
        On the <b>Identity Management</b> tab choose <b>SCIM 2.0</b>; <b>Base URL</b> = <code>{baseUrl}</code>
        ; <b>Token Key</b> = {token}; enter a <b>Test User Email</b>.
      </>,
      <>
        Click <b>Test Connection</b> (JumpCloud creates and then deletes a test user and group), then{' '}
        <b>Activate</b> and <b>Save</b>.
      </>,
      <>
        On the <b>User Groups</b> tab, bind the groups whose members should have access.
      </>,
    ],
  },
  {
    id: 'pingfederate',
    name: 'PingFederate',
    canConnect: true,
    baseUrl: asIs,
    steps: ({ baseUrl, token }) => [
      <>
        In PingFederate open <b>Applications → SP Connections → Create Connection</b>; choose{' '}
        <b>Outbound Provisioning</b> with the <b>SCIM Connector</b>.
      </>,
      <>
        On <b>Configure Provisioning → Target</b>: <b>SCIM URL</b> = <code>{baseUrl}</code>;{' '}
        <b>SCIM Version</b> = <b>2.0</b>; <b>Authentication Method</b> = <b>OAuth 2 Bearer Token</b>;{' '}
        <b>Access Token</b> = {token}. Keep <b>userName</b> as the unique user identifier.
      </>,
      <>
        Under <b>Manage Channels</b>, add a channel for your user store, map the attributes, and set the
        channel and the connection to <b>Active</b>.
      </>,
    ],
  },
  {
    id: 'rippling',
    name: 'Rippling',
    canConnect: true,
    baseUrl: asIs,
    steps: ({ baseUrl, token }) => [
      <>
        In Rippling open <b>App Shop</b> and your custom app for this service (<b>Create New App</b> if there
        is none), and turn on SCIM provisioning.
      </>,
      <>
        Enter <b>SCIM Base URL</b> = <code>{baseUrl}</code> and <b>Bearer Token</b> = {token}.
      </>,
      <>
        Tick <b>Supports Groups</b> if you want groups (and roles by group) here;{' '}
        <b>Use PATCH to edit Groups</b> works either way. Rippling provisions people by their hire and
        termination dates.
      </>,
    ],
  },
  {
    id: 'generic',
    name: 'Another SCIM 2.0 client',
    canConnect: true,
    baseUrl: asIs,
    steps: ({ baseUrl, token }) => [
      <>
        In your provisioning tool, add a SCIM 2.0 target (it may be called SCIM endpoint, Tenant URL, or base
        URL): <code>{baseUrl}</code>.
      </>,
      <>
        Authentication: HTTP header <code>Authorization: Bearer …</code> with the token {token}.
      </>,
      <>
        Users and Groups are supported, with PATCH or PUT for updates, <code>filter=userName eq "…"</code>{' '}
        lookups and paging. Deactivating or deleting a user ends their access here.
      </>,
    ],
  },
];

export function findProvider(id: string): ProviderGuide | undefined {
  return PROVIDERS.find((provider) => provider.id === id);
}

export function providerName(id: string): string {
  return findProvider(id)?.name ?? id;
}
