// The JS API of tauri-plugin-keylink: link accounts, list them, and call the provider's API
// without ever holding a token. Every call goes to the plugin's Rust side; tokens stay there.

import { Channel, invoke } from '@tauri-apps/api/core'

/** What kind of failure a {@link KeylinkError} is; its `message` says what happened and what to do. */
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
  | 'wrong_account'
  | 'internal'

// Every code, so that a code this version does not know (from a newer plugin, or another
// plugin's error that looks alike) is not passed on as one of them.
const CODES: Record<ErrorCode, true> = {
  config: true,
  not_found: true,
  redirect_rejected: true,
  timeout: true,
  cancelled: true,
  needs_relink: true,
  keychain: true,
  provider: true,
  browser: true,
  busy: true,
  link_failed: true,
  checks_failed: true,
  not_allowed: true,
  wrong_account: true,
  internal: true
}

function isCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(CODES, code)
}

/**
 * The error every function of this API rejects with when the call itself was well-formed.
 * A call made wrongly (an argument of the wrong type, a body `fetch` does not take) rejects
 * with a `TypeError` instead, as the web's `fetch` does.
 *
 * A call stopped by its `AbortSignal` rejects with code `cancelled` and `name`
 * `'AbortError'` (the signal's `reason` is the `cause`), so both
 * `e.code === 'cancelled'` and the web's `e.name === 'AbortError'` recognise it.
 *
 * @example
 * ```ts
 * import { accounts, KeylinkError } from 'tauri-plugin-keylink-api'
 *
 * try {
 *   console.log(await accounts())
 * } catch (e) {
 *   if (e instanceof KeylinkError && e.code === 'keychain') showRetry(e.message)
 *   else throw e
 * }
 * ```
 */
export class KeylinkError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message)
    this.name = 'KeylinkError'
    this.code = code
    // Set here rather than through super(): older webviews ignore Error's options.
    if (options && 'cause' in options) this.cause = options.cause
  }
}

// Tauri 2 refuses a command no capability of the window grants with a plain string: release
// builds say "Command plugin:keylink|fetch not allowed by ACL"; debug builds start with
// "keylink.fetch not allowed" (on window ..., on origin ..., or ". Permissions associated ...")
// or "keylink.fetch explicitly denied". Only those are `not_allowed`; any other string is not
// a permission question.
function refusedByCapabilities(text: string, command: string): boolean {
  if (text === `Command plugin:keylink|${command} not allowed by ACL`) return true
  const debugName = `keylink.${command} `
  if (text.startsWith(`${debugName}explicitly denied`)) return true
  // A command the Rust side does not have (a JS package newer than the plugin) is refused
  // the same way, but granting a permission would not help.
  return text.startsWith(`${debugName}not allowed`) && !/(Command|Plugin) not found$/.test(text)
}

function describeError(e: unknown): string {
  if (e instanceof Error) return e.message
  if (typeof e === 'string') return e
  try {
    return JSON.stringify(e) ?? String(e)
  } catch {
    return String(e)
  }
}

function asKeylinkError(e: unknown, command: string): KeylinkError {
  if (e instanceof KeylinkError) return e
  if (typeof e === 'object' && e !== null) {
    const { code, message } = e as { code?: unknown; message?: unknown }
    if (isCode(code) && typeof message === 'string') {
      return new KeylinkError(code, message)
    }
  }
  if (typeof e === 'string' && refusedByCapabilities(e, command)) {
    const permission =
      command === 'fetch'
        ? 'keylink:allow-fetch'
        : `keylink:default (or keylink:allow-${command.replace(/_/g, '-')})`
    return new KeylinkError(
      'not_allowed',
      `This window may not use Keylink's ${command} command: add ${permission} to the permissions of a capability for this window.`,
      { cause: e }
    )
  }
  return new KeylinkError(
    'internal',
    `Keylink's ${command} command failed unexpectedly (${describeError(e)}); this is a bug in the app or in Keylink, so please report it.`,
    { cause: e }
  )
}

async function call<T>(command: string, args: Record<string, unknown> = {}): Promise<T> {
  try {
    return await invoke<T>(`plugin:keylink|${command}`, args)
  } catch (e) {
    throw asKeylinkError(e, command)
  }
}

function describeValue(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name
    return name && name !== 'Object' ? `a ${name}` : 'a plain object'
  }
  return `a ${typeof value}`
}

/** The id of an `Account` or of an account id. */
function idOf(value: unknown, what: 'account' | 'provider', fn: string): string {
  if (typeof value === 'string' && value !== '') return value
  if (typeof value === 'object' && value !== null) {
    const { id } = value as { id?: unknown }
    if (typeof id === 'string' && id !== '') return id
  }
  const type = what === 'account' ? 'an Account' : 'a Provider'
  throw new TypeError(
    `${fn}(): the ${what} must be ${type} or its id (a non-empty string), not ${describeValue(value)}.`
  )
}

function abortError(signal: AbortSignal, message: string): KeylinkError {
  const error = new KeylinkError('cancelled', message, { cause: signal.reason })
  error.name = 'AbortError'
  return error
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
  /** Scopes the configuration says an app may ask for later (its `optional_scopes`), with
   * {@link link}'s or {@link reconnect}'s `scopes`. */
  optionalScopes: string[]
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
  /**
   * Aborting cancels the link: it rejects with code `cancelled` (`name` `'AbortError'`) and
   * stores nothing. A sign-in that had already finished when the abort reached the plugin
   * still resolves with its account.
   */
  signal?: AbortSignal
}

export interface BrowserLinkOptions extends LinkOptions {
  /**
   * Scopes to ask for besides the provider's configured ones (incremental consent); a
   * reconnect also asks again for every scope the account has, so none is dropped. Each is one
   * word of printable ASCII without quotes or backslashes, else the call rejects with code
   * `config` and nothing is sent. The account's `scopes` are then what the provider granted.
   */
  scopes?: string[]
}

export interface DeviceLinkOptions extends LinkOptions {
  /** Called with the code to show once the provider gave it. */
  onCode?: (code: DeviceCode) => void
}

/** `options.scopes` as the command's argument; checked here so a mistake sends nothing. */
function scopesArg(options: BrowserLinkOptions): { scopes?: string[] } {
  const { scopes } = options
  if (scopes === undefined) return {}
  if (!Array.isArray(scopes) || scopes.some((s) => typeof s !== 'string')) {
    throw new KeylinkError('config', 'The scopes must be a list of strings; nothing was sent.')
  }
  return { scopes }
}

function session(
  command: string,
  args: Record<string, unknown>,
  options: DeviceLinkOptions
): Promise<Account> {
  const { onProgress, onCode, signal } = options
  if (signal?.aborted) {
    return Promise.reject(abortError(signal, 'The link was cancelled before it started; nothing was linked.'))
  }
  return new Promise<Account>((resolve, reject) => {
    let id: string | null = null
    // Only by its id: before the session has one, cancelling could hit another window's link.
    const cancel = () => {
      if (id === null) return
      // A cancel the plugin refused (a capability without keylink:allow-cancel-link, say)
      // must not leave the caller waiting for a link it believes stopped.
      call('cancel_link', { session: id }).catch(reject)
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
    call<Account>(command, { ...args, onProgress: channel }).then(
      (account) => {
        signal?.removeEventListener('abort', cancel)
        resolve(account)
      },
      (e: KeylinkError) => {
        signal?.removeEventListener('abort', cancel)
        if (signal?.aborted && e.code === 'cancelled') {
          e.name = 'AbortError'
          e.cause = signal.reason
        }
        reject(e)
      }
    )
  })
}

/**
 * The configured providers.
 *
 * @example
 * ```ts
 * import { providers } from 'tauri-plugin-keylink-api'
 *
 * for (const p of await providers()) console.log(p.id, p.name, p.redirectUri)
 * ```
 */
export async function providers(): Promise<Provider[]> {
  return await call('providers')
}

/**
 * The linked accounts.
 *
 * @example
 * ```ts
 * import { accounts } from 'tauri-plugin-keylink-api'
 *
 * const list = await accounts()
 * const stale = list.filter((a) => a.status === 'needs_relink')
 * ```
 */
export async function accounts(): Promise<Account[]> {
  return await call('accounts')
}

/**
 * Links an account at `provider` (a {@link Provider} or its id): the system browser opens at
 * its sign-in page, and the promise resolves once the person has signed in.
 *
 * @example
 * ```ts
 * import { link } from 'tauri-plugin-keylink-api'
 *
 * const controller = new AbortController()
 * cancelButton.onclick = () => controller.abort()
 * const account = await link('github', {
 *   signal: controller.signal,
 *   onProgress: (p) => { if (p.kind === 'browserOpened') status.textContent = 'Continue in your browser…' }
 * })
 * // Asking for more than the provider's configured scopes:
 * const withCalendar = await link('google', { scopes: ['https://www.googleapis.com/auth/calendar.readonly'] })
 * ```
 */
export async function link(
  provider: Provider | string,
  options: BrowserLinkOptions = {}
): Promise<Account> {
  return await session(
    'link',
    { provider: idOf(provider, 'provider', 'link'), ...scopesArg(options) },
    options
  )
}

/**
 * Links an account at `provider` (a {@link Provider} or its id) with a code the person enters
 * on another device.
 *
 * @example
 * ```ts
 * import { linkWithDevice } from 'tauri-plugin-keylink-api'
 *
 * const account = await linkWithDevice('github', {
 *   onCode: ({ userCode, verificationUri, qrSvg }) => showCode(userCode, verificationUri, qrSvg)
 * })
 * ```
 */
export async function linkWithDevice(
  provider: Provider | string,
  options: DeviceLinkOptions = {}
): Promise<Account> {
  return await session(
    'link_with_device',
    { provider: idOf(provider, 'provider', 'linkWithDevice') },
    options
  )
}

/**
 * Signs in again as `account` (an {@link Account} or its id); signing in as anyone else
 * changes nothing. With `scopes`, asks for those permissions too (incremental consent): the
 * account resolves with the scopes the provider granted; declining rejects with code
 * `cancelled` and changes nothing.
 *
 * @example
 * ```ts
 * import { accounts, reconnect } from 'tauri-plugin-keylink-api'
 *
 * for (const account of await accounts()) {
 *   if (account.status === 'needs_relink') await reconnect(account)
 * }
 * // Later, when a feature needs more:
 * const account = await reconnect(accountId, { scopes: ['calendar'] })
 * ```
 */
export async function reconnect(
  account: Account | string,
  options: BrowserLinkOptions = {}
): Promise<Account> {
  return await session(
    'reconnect',
    { account: idOf(account, 'account', 'reconnect'), ...scopesArg(options) },
    options
  )
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

/**
 * Asks the provider who the stored tokens of `account` (an {@link Account} or its id) belong
 * to.
 *
 * @example
 * ```ts
 * import { checkConnection } from 'tauri-plugin-keylink-api'
 *
 * const c = await checkConnection(account)
 * console.log(`${c.answeredBy} knows this account as ${c.email ?? c.subject}`)
 * ```
 */
export async function checkConnection(account: Account | string): Promise<Connection> {
  return await call('check_connection', { account: idOf(account, 'account', 'checkConnection') })
}

/** What became of signing out at the provider (`unlink` with `signOut`). */
export type SignOutResult = 'opened' | 'not_supported' | 'no_id_token' | 'failed'

/** What unlinking did. */
export interface Unlinked {
  account: Account
  revoked: boolean
  warning: string | null
  /**
   * With `signOut`: `opened` (the browser shows the provider's sign-out page; the person
   * confirms there, and {@link onSignedOut} hears when the provider sends them back),
   * `not_supported` (the provider has no sign-out), `no_id_token` (it cannot be told whose
   * session to end) or `failed`. Null without `signOut`.
   */
  signOut: SignOutResult | null
  /** A sentence for the person about `signOut` (never the sign-out URL). */
  signOutMessage: string | null
}

export interface UnlinkOptions {
  /**
   * Also end the person's session at the provider (OpenID Connect RP-Initiated Logout): the
   * browser opens the provider's sign-out page. The account is unlinked either way.
   */
  signOut?: boolean
}

/**
 * Revokes the grant of `account` (an {@link Account} or its id) at the provider (when it
 * can) and removes the account here; with `{ signOut: true }`, also opens the provider's
 * sign-out page in the browser, so a shared computer is not left signed in there.
 *
 * @example
 * ```ts
 * import { unlink } from 'tauri-plugin-keylink-api'
 *
 * const { revoked, warning } = await unlink(account)
 * if (warning) showNotice(warning)
 * // Signing out at the provider too ("Sign out everywhere"):
 * const { signOut, signOutMessage } = await unlink(account, { signOut: true })
 * showNotice(signOutMessage)
 * ```
 */
export async function unlink(account: Account | string, options: UnlinkOptions = {}): Promise<Unlinked> {
  const id = idOf(account, 'account', 'unlink')
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`unlink(): the options must be an object, not ${describeValue(options)}.`)
  }
  const { signOut } = options
  if (signOut !== undefined && typeof signOut !== 'boolean') {
    throw new TypeError(`unlink(): signOut must be true or false, not ${describeValue(signOut)}; nothing was unlinked.`)
  }
  const unlinked = await call<Unlinked>('unlink', signOut ? { account: id, signOut: true } : { account: id })
  // A plugin older than this API says nothing of signing out.
  return { ...unlinked, signOut: unlinked.signOut ?? null, signOutMessage: unlinked.signOutMessage ?? null }
}

/** A provider that confirmed the person signed out there. */
export interface SignedOut {
  /** The provider's id. */
  provider: string
  /** Its display name. */
  name: string
}

/**
 * The accounts after a change and, for a redirect no `link()` here was waiting for (the app
 * was started by it, say), what it did: the account it linked, or why it linked nothing.
 */
export interface AccountsChanged {
  accounts: Account[]
  linked: Account | null
  error: { code: ErrorCode; message: string } | null
  /** The provider's confirmation, delivered by the OS, that the person signed out there
   * (after `unlink(account, { signOut: true })`); it changed nothing here. */
  signedOut: SignedOut | null
}

export interface AccountsChangedOptions {
  /** Aborting stops the listener, as calling the function `onAccountsChanged` returns does. */
  signal?: AbortSignal
}

// One registration with the Rust side per page, shared by every listener, so that a listener
// stopped and another started (React StrictMode mounts each effect twice) cannot take an
// outcome away from the one that stays: whatever reaches the page goes to the listeners there
// at the time, and an outcome that finds none waits here for the next one.
type Listener = { callback: (change: AccountsChanged) => void }
const listeners = new Set<Listener>()
const waiting: AccountsChanged[] = []
// The channel the Rust side sends on; a new one for each registration, since a channel's
// messages are numbered from 0 by each registration on the Rust side.
let registered: Channel<AccountsChanged> | null = null
let syncing: Promise<void> | null = null

function tell(listener: Listener, change: AccountsChanged): void {
  try {
    listener.callback(change)
  } catch (e) {
    // A listener that throws is reported like a throwing event listener, and the others
    // still hear of the change.
    if (typeof reportError === 'function') reportError(e)
    else
      queueMicrotask(() => {
        throw e
      })
  }
}

function deliver(change: AccountsChanged | null): void {
  if (listeners.size === 0) {
    // A change without an outcome is stale by the next one, which reads the accounts anew.
    if (change !== null && (change.linked !== null || change.error !== null || change.signedOut != null)) {
      waiting.push(change)
    }
    return
  }
  const changes = waiting.splice(0)
  if (change !== null) changes.push(change)
  for (const c of changes) {
    for (const listener of [...listeners]) {
      // One stopped by an earlier listener of the same change hears no more.
      if (listeners.has(listener)) tell(listener, c)
    }
  }
}

// Brings the Rust side in line with whether anyone listens, one watch or unwatch at a time,
// so two registrations never overlap (that would deliver a change twice). A failed
// registration rejects for everyone waiting on it; a failed unregistration leaves the channel
// registered, and what it brings waits here for the next listener.
function sync(): Promise<void> {
  if (syncing !== null) return syncing
  syncing = (async () => {
    // Yield first, so that `syncing` is set before the loop can end and clear it.
    await null
    let unwatchFailed = false
    try {
      for (;;) {
        if (listeners.size > 0 && registered === null) {
          const channel = new Channel<AccountsChanged>()
          channel.onmessage = deliver
          await call('watch_accounts', { channel })
          registered = channel
        } else if (listeners.size === 0 && registered !== null && !unwatchFailed) {
          try {
            await call('unwatch_accounts', { channel: registered.id })
            registered = null
          } catch {
            unwatchFailed = true
          }
        } else {
          return
        }
      }
    } finally {
      // In the same step as the decision to stop: a listener added after it starts a new run.
      syncing = null
    }
  })()
  return syncing
}

/**
 * Calls `callback` whenever accounts are linked or unlinked; resolves to a function that
 * stops it (so does aborting `options.signal`). What a redirect did while nobody listened (a
 * cold start: the app was started by a sign-in) reaches the next listener, even one started
 * after another was stopped, as React StrictMode does.
 *
 * @example
 * ```ts
 * import { onAccountsChanged } from 'tauri-plugin-keylink-api'
 *
 * // In a React effect: the signal stops the listener at once on cleanup.
 * useEffect(() => {
 *   const controller = new AbortController()
 *   onAccountsChanged((change) => {
 *     setAccounts(change.accounts)
 *     if (change.linked) notify(`Linked ${change.linked.email ?? change.linked.id}`)
 *     if (change.error) notify(change.error.message)
 *   }, { signal: controller.signal }).catch(showError)
 *   return () => controller.abort()
 * }, [])
 * ```
 */
export async function onAccountsChanged(
  callback: (change: AccountsChanged) => void,
  options: AccountsChangedOptions = {}
): Promise<() => void> {
  if (typeof callback !== 'function') {
    throw new TypeError(`onAccountsChanged(): the callback must be a function, not ${describeValue(callback)}.`)
  }
  const { signal } = options
  if (signal?.aborted) return () => {}
  const listener: Listener = { callback }
  const stop = () => {
    signal?.removeEventListener('abort', stop)
    if (!listeners.delete(listener)) return
    // Whoever waits on a registration this starts hears of its failure; nobody waits here.
    sync().catch(() => {})
  }
  listeners.add(listener)
  signal?.addEventListener('abort', stop, { once: true })
  try {
    await sync()
  } catch (e) {
    stop()
    throw e
  }
  // What waited for a listener goes to those there now, before anything newer.
  if (listeners.size > 0) deliver(null)
  return stop
}

/**
 * Calls `callback` when a provider confirms that the person signed out there (the browser
 * came back from its sign-out page after `unlink(account, { signOut: true })`), with the
 * provider's id and name; resolves to a function that stops it. It is
 * {@link onAccountsChanged} for `signedOut` only, so a confirmation that started the app
 * reaches it as a cold-start outcome does.
 *
 * @example
 * ```ts
 * import { onSignedOut } from 'tauri-plugin-keylink-api'
 *
 * await onSignedOut(({ name }) => notify(`You are signed out of ${name}.`))
 * ```
 */
export async function onSignedOut(
  callback: (signedOut: SignedOut) => void,
  options: AccountsChangedOptions = {}
): Promise<() => void> {
  if (typeof callback !== 'function') {
    throw new TypeError(`onSignedOut(): the callback must be a function, not ${describeValue(callback)}.`)
  }
  return await onAccountsChanged((change) => {
    if (change.signedOut) callback(change.signedOut)
  }, options)
}

/** A body `fetch` sends. */
export type FetchBody = string | ArrayBuffer | ArrayBufferView | Blob | URLSearchParams | FormData

/**
 * The request of `fetch`: `method`, `headers`, `body` and `signal`, as in the web's `fetch`,
 * and which token it carries (`scopes`, `resource`).
 */
export interface FetchInit {
  /** `GET` unless given. */
  method?: string
  /** A `Headers`, an array of name-value pairs, or a record. */
  headers?: HeadersInit
  /**
   * A string (`text/plain;charset=UTF-8`), bytes, a `Blob` (its `type`), `URLSearchParams`
   * (`application/x-www-form-urlencoded;charset=UTF-8`) or `FormData` (`multipart/form-data`
   * with its boundary). The `Content-Type` in parentheses is set unless `headers` has one.
   */
  body?: FetchBody | null
  /**
   * Aborting rejects at once with code `cancelled` and `name` `'AbortError'`. The request
   * may already have reached the provider; its answer is dropped.
   */
  signal?: AbortSignal | null
  /**
   * The scopes the token is limited to, each one the account was granted (else the call
   * rejects with code `needs_relink` and nothing is sent; `reconnect(account, { scopes })`
   * asks for more). Unless given, those configured for the URL's origin
   * (`[providers.x.apis."<origin>"]`), if any.
   */
  scopes?: string[]
  /**
   * The API the token is for (an RFC 8707 resource indicator: an absolute URL without a
   * fragment, sent exactly as written). Unless given, the one configured for the URL's
   * origin, if any; without either, the account's own token.
   */
  resource?: string
}

const INIT_KEYS = new Set(['method', 'headers', 'body', 'signal', 'scopes', 'resource'])

/** `init.scopes` and `init.resource` as the command takes them; checked here so a mistake sends nothing. */
function tokenArgs(init: FetchInit): { scopes?: string[]; resource?: string } {
  const { scopes, resource } = init
  const args: { scopes?: string[]; resource?: string } = {}
  if (scopes !== undefined) {
    if (!Array.isArray(scopes) || scopes.some((s) => typeof s !== 'string' || s === '')) {
      const what = Array.isArray(scopes)
        ? `an array holding ${describeValue(scopes.find((s) => typeof s !== 'string' || s === ''))}`
        : describeValue(scopes)
      throw new TypeError(`fetch(): init.scopes must be an array of scope names (non-empty strings), not ${what}.`)
    }
    args.scopes = [...scopes]
  }
  if (resource !== undefined) {
    let absolute = false
    try {
      absolute = typeof resource === 'string' && new URL(resource).href !== '' && !resource.includes('#')
    } catch {
      absolute = false
    }
    if (!absolute) {
      throw new TypeError(
        `fetch(): init.resource must be the API's absolute URL without a fragment, such as 'https://api.example.com', not ${typeof resource === 'string' ? JSON.stringify(resource.slice(0, 100)) : describeValue(resource)}.`
      )
    }
    args.resource = resource
  }
  return args
}

function isBody(body: unknown): body is FetchBody {
  return (
    typeof body === 'string' ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    body instanceof Blob ||
    body instanceof URLSearchParams ||
    body instanceof FormData
  )
}

interface FetchAnswer {
  status: number
  headers: [string, string][]
  body: string
}

function toBase64(bytes: Uint8Array): string {
  let text = ''
  // In slices: one call with every byte as an argument overflows the stack on a large body.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  }
  return btoa(text)
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const raw = atob(text)
  const bytes = new Uint8Array(raw.length)
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i)
  return bytes
}

/** Resolves as `promise` does, or rejects as soon as `signal` is aborted. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | null | undefined): Promise<T> {
  if (!signal) return promise
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(abortError(signal, 'The request was cancelled; its answer, if any, was dropped.'))
    if (signal.aborted) abort()
    signal.addEventListener('abort', abort, { once: true })
    // Handled either way: an answer after the abort is dropped, never left unhandled.
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort))
  })
}

/**
 * Calls the provider's API as `account` (an {@link Account} or its id), as the web's `fetch`
 * would: the Rust side attaches a fresh access token and makes the request, only to an origin
 * in the provider's `api_origins`, redirects not followed (a 3xx is the answer). Needs the
 * `keylink:allow-fetch` permission. The token never reaches the webview.
 *
 * `url` must be absolute. `init` takes `method`, `headers`, `body` and `signal`, and
 * `scopes` and `resource` for the token (see {@link FetchInit}); anything else in it, a body
 * of another type, scopes that are not a list of strings or a resource that is not an
 * absolute URL, rejects with a `TypeError` and sends nothing.
 *
 * The token is the one for the API at `url`'s origin: limited to the resource and scopes the
 * provider's configuration gives that origin (`[providers.x.apis."<origin>"]`), or to the
 * `scopes` and `resource` given here, so a token for one API never reaches another.
 *
 * @example
 * ```ts
 * import { fetch } from 'tauri-plugin-keylink-api'
 *
 * const response = await fetch(account, 'https://api.example.com/v1/files', {
 *   method: 'POST',
 *   headers: { accept: 'application/json' },
 *   body: new URLSearchParams({ name: 'notes.txt' }),
 *   signal: AbortSignal.timeout(10_000)
 * })
 * if (!response.ok) throw new Error(`the API answered ${response.status}`)
 * const file = await response.json()
 *
 * // A token for the calendar API only, whatever the configuration says for this origin:
 * const events = await fetch(account, 'https://api.example.com/calendar/events', {
 *   scopes: ['calendar.read'],
 *   resource: 'https://calendar.example.com'
 * })
 * ```
 */
export async function fetch(
  account: Account | string,
  url: string | URL,
  init: FetchInit = {}
): Promise<Response> {
  const id = idOf(account, 'account', 'fetch')
  if (typeof init !== 'object' || init === null) {
    throw new TypeError(`fetch(): init must be an object, not ${describeValue(init)}.`)
  }
  const extra = Object.keys(init).filter(
    (key) => !INIT_KEYS.has(key) && (init as Record<string, unknown>)[key] !== undefined
  )
  if (extra.length > 0) {
    throw new TypeError(
      `fetch(): init.${extra[0]} is not supported; Keylink's fetch takes method, headers, body, signal, scopes and resource.`
    )
  }
  const tokenInit = tokenArgs(init)
  const { signal, body } = init
  if (signal?.aborted) throw abortError(signal, 'The request was cancelled before it was sent.')
  let target: string
  try {
    target = new URL(String(url)).href
  } catch {
    throw new TypeError("fetch(): the URL is not absolute; give the provider's API address in full, starting with https://.")
  }
  if (body !== undefined && body !== null && !isBody(body)) {
    throw new TypeError(
      `fetch(): the body must be a string, ArrayBuffer, typed array, DataView, Blob, URLSearchParams or FormData, not ${describeValue(body)}; for JSON, pass JSON.stringify(value).`
    )
  }
  const method = init.method ?? 'GET'
  if (body != null && /^(GET|HEAD)$/i.test(method)) {
    throw new TypeError(
      `fetch(): a ${method.toUpperCase()} request cannot have a body; use POST, PUT or PATCH, or leave out the body.`
    )
  }
  // The caller's headers as given: a Request would drop some ("forbidden") names.
  const headers = new Headers(init.headers ?? undefined)
  // The web's own encoding: the method checked and normalised, FormData as multipart with
  // its boundary, and the Content-Type each kind of body implies.
  const request = new Request(target, { method, body: (body ?? null) as BodyInit | null })
  const implied = request.headers.get('content-type')
  if (implied !== null && !headers.has('content-type')) headers.set('content-type', implied)
  const bytes = body == null ? null : new Uint8Array(await abortable(request.arrayBuffer(), signal))
  const answer = await abortable(
    call<FetchAnswer>('fetch', {
      account: id,
      url: target,
      init: { method: request.method, headers: [...headers], body: bytes && toBase64(bytes), ...tokenInit }
    }),
    signal
  )
  const noBody = [101, 103, 204, 205, 304].includes(answer.status)
  const response = new Response(noBody ? null : fromBase64(answer.body), {
    status: answer.status,
    headers: answer.headers
  })
  // Response has no constructor argument for its URL; redirects are not followed, so it is
  // the one requested.
  Object.defineProperty(response, 'url', { value: target })
  return response
}
