// The JS API of tauri-plugin-keylink: link accounts, list them, and call the provider's API
// without ever holding a token. Every call goes to the plugin's Rust side; tokens stay there.

import { Channel, invoke } from '@tauri-apps/api/core'

/** What kind of failure an error is; `message` says what happened and what to do. */
export type ErrorCode =
  | 'config'
  | 'not_found'
  | 'redirect_rejected'
  | 'timeout'
  | 'cancelled'
  | 'needs_relink'
  | 'keychain'
  | 'provider'
  | 'browser'
  | 'busy'
  | 'link_failed'
  | 'checks_failed'
  | 'not_allowed'
  | 'internal'

/** The error every function of this API rejects with. */
export class KeylinkError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string) {
    super(message)
    this.name = 'KeylinkError'
    this.code = code
  }
}

function asKeylinkError(e: unknown): KeylinkError {
  if (e instanceof KeylinkError) return e
  if (typeof e === 'object' && e !== null && 'code' in e && 'message' in e) {
    const { code, message } = e as { code: ErrorCode; message: string }
    return new KeylinkError(code, message)
  }
  // The IPC layer refuses a command it was not granted with a plain string.
  return new KeylinkError('not_allowed', String(e))
}

async function call<T>(command: string, args: Record<string, unknown> = {}): Promise<T> {
  try {
    return await invoke<T>(`plugin:keylink|${command}`, args)
  } catch (e) {
    throw asKeylinkError(e)
  }
}

/** A configured provider. */
export interface Provider {
  id: string
  name: string
  redirect: 'deep-link' | 'loopback'
  /** The redirect URI to register at the provider. */
  redirectUri: string
  /** The host people sign in at. */
  host: string | null
  /** The provider offers sign-in with a code entered on another device (known once its
   * discovery, started with the app, has finished: ask again later). */
  deviceSignIn: boolean
  /** Set by the administrator's policy. */
  fromPolicy: boolean
}

/** A linked account (no tokens: they stay in the keychain). */
export interface Account {
  id: string
  provider: string
  email: string | null
  name: string | null
  scopes: string[]
  linkedAt: string
  expiresAt: string | null
  status: 'ok' | 'needs_relink'
}

/** The code to enter on another device. */
export interface DeviceCode {
  verificationUri: string
  userCode: string
  verificationUriComplete: string | null
  /** The page to open (with the code filled in where there is one) as a QR code, an SVG
   * document; null when the address is too long for one. */
  qrSvg: string | null
}

/** A step of a link in progress, in this order. */
export type Progress =
  | { kind: 'starting'; session: string }
  | { kind: 'browserOpened' }
  | ({ kind: 'codeShown' } & DeviceCode)
  | { kind: 'waiting'; secondsLeft: number }
  | { kind: 'exchanging' }

export interface LinkOptions {
  /** Called with each step. */
  onProgress?: (progress: Progress) => void
  /** Aborting cancels the link: it rejects with code `cancelled` and stores nothing. */
  signal?: AbortSignal
}

export interface DeviceLinkOptions extends LinkOptions {
  /** Called with the code to show once the provider gave it. */
  onCode?: (code: DeviceCode) => void
}

async function session(
  command: string,
  args: Record<string, unknown>,
  options: DeviceLinkOptions
): Promise<Account> {
  const { onProgress, onCode, signal } = options
  if (signal?.aborted) {
    throw new KeylinkError('cancelled', 'The link was cancelled before it started.')
  }
  let id: string | null = null
  // Only by its id: before the session has one, cancelling could hit another window's link.
  const cancel = () => {
    if (id !== null) void call('cancel_link', { session: id })
  }
  const channel = new Channel<Progress>()
  channel.onmessage = (progress) => {
    if (progress.kind === 'starting') {
      id = progress.session
      // Aborted before the session had a name: cancel it now that it has one.
      if (signal?.aborted) cancel()
    }
    onProgress?.(progress)
    if (progress.kind === 'codeShown') {
      const { verificationUri, userCode, verificationUriComplete, qrSvg } = progress
      onCode?.({ verificationUri, userCode, verificationUriComplete, qrSvg })
    }
  }
  signal?.addEventListener('abort', cancel, { once: true })
  try {
    return await call<Account>(command, { ...args, onProgress: channel })
  } finally {
    signal?.removeEventListener('abort', cancel)
  }
}

/** The configured providers. */
export async function providers(): Promise<Provider[]> {
  return await call('providers')
}

/** The linked accounts. */
export async function accounts(): Promise<Account[]> {
  return await call('accounts')
}

/** Links an account at `provider`: the system browser opens at its sign-in page. */
export async function link(provider: string, options: LinkOptions = {}): Promise<Account> {
  return await session('link', { provider }, options)
}

/** Links an account at `provider` with a code the person enters on another device. */
export async function linkWithDevice(
  provider: string,
  options: DeviceLinkOptions = {}
): Promise<Account> {
  return await session('link_with_device', { provider }, options)
}

/** Signs in again as `account`; signing in as anyone else changes nothing. */
export async function reconnect(account: string, options: LinkOptions = {}): Promise<Account> {
  return await session('reconnect', { account }, options)
}

/** What the provider said about an account's stored tokens. */
export interface Connection {
  account: Account
  /** The host of the provider's user endpoint that answered. */
  answeredBy: string
  /** The subject it answered for. */
  subject: string
  email: string | null
  name: string | null
  expiresAt: string | null
  checkedAt: string
}

/** Asks the provider who the account's stored tokens belong to. */
export async function checkConnection(account: string): Promise<Connection> {
  return await call('check_connection', { account })
}

/** What unlinking did. */
export interface Unlinked {
  account: Account
  revoked: boolean
  warning: string | null
}

/** Revokes the account's grant at the provider (when it can) and removes it here. */
export async function unlink(account: string): Promise<Unlinked> {
  return await call('unlink', { account })
}

/**
 * The accounts after a change and, for a redirect no `link()` here was waiting for (the app
 * was started by it, say), what it did: the account it linked, or why it linked nothing.
 */
export interface AccountsChanged {
  accounts: Account[]
  linked: Account | null
  error: { code: ErrorCode; message: string } | null
}

/**
 * Calls `callback` whenever accounts are linked or unlinked; returns a function that stops it.
 * What a redirect did before anyone listened (a cold start) reaches the first listener.
 */
export async function onAccountsChanged(
  callback: (change: AccountsChanged) => void
): Promise<() => void> {
  let listening = true
  const channel = new Channel<AccountsChanged>()
  channel.onmessage = (change) => {
    if (listening) callback(change)
  }
  await call('watch_accounts', { channel })
  return () => {
    listening = false
    // So what a redirect does next waits for the next listener instead of this one.
    void call('unwatch_accounts', { channel: channel.id })
  }
}

/** The request of `fetch`. */
export interface FetchInit {
  method?: string
  headers?: Record<string, string> | [string, string][]
  body?: string | Uint8Array | ArrayBuffer
}

interface FetchAnswer {
  status: number
  headers: [string, string][]
  body: string
}

function toBase64(bytes: Uint8Array): string {
  let text = ''
  for (const b of bytes) text += String.fromCharCode(b)
  return btoa(text)
}

function fromBase64(text: string): Uint8Array {
  const raw = atob(text)
  const bytes = new Uint8Array(raw.length)
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i)
  return bytes
}

/**
 * Calls the provider's API as `account`: the Rust side attaches a fresh access token and
 * makes the request, only to an origin in the provider's `api_origins`, redirects not
 * followed. Needs the `keylink:allow-fetch` permission. The token never reaches the webview.
 */
export async function fetch(account: string, url: string, init: FetchInit = {}): Promise<Response> {
  const headers = Array.isArray(init.headers)
    ? init.headers
    : Object.entries(init.headers ?? {})
  let body: string | null = null
  if (typeof init.body === 'string') body = toBase64(new TextEncoder().encode(init.body))
  else if (init.body instanceof Uint8Array) body = toBase64(init.body)
  else if (init.body instanceof ArrayBuffer) body = toBase64(new Uint8Array(init.body))
  const answer = await call<FetchAnswer>('fetch', {
    account,
    url,
    init: { method: init.method ?? 'GET', headers, body }
  })
  const noBody = [101, 204, 205, 304].includes(answer.status)
  const bytes = fromBase64(answer.body)
  return new Response(noBody ? null : (bytes as BodyInit), {
    status: answer.status,
    headers: answer.headers
  })
}
