// The one place the UI talks to the app: the Keylink plugin's JS API, which the app exposes as
// window.__TAURI__.keylink. Errors always come back as {code, message}; no call returns a token.

function plugin() {
  const keylink = window.__TAURI__ && window.__TAURI__.keylink;
  if (!keylink) {
    throw { code: 'internal', message: 'Keylink must be opened as the desktop app.' };
  }
  return keylink;
}

async function call(f) {
  try {
    return await f(plugin());
  } catch (error) {
    if (error && typeof error === 'object' && typeof error.code === 'string') {
      throw error;
    }
    throw { code: 'internal', message: String(error || 'Something went wrong.') };
  }
}

/** The configured providers; `deviceSignIn` turns true once discovery found a device endpoint. */
export const providers = () => call((k) => k.providers());
/** The linked accounts. */
export const accounts = () => call((k) => k.accounts());
/**
 * Links an account: in the system browser, with a code entered on another device (`device`),
 * or again as `account` (Reconnect), asking for `scopes` too ("Allow more"). `onProgress`
 * hears each step; aborting `signal` cancels.
 */
export const link = (provider, { device = false, account = null, scopes = null, onProgress, signal }) => call((k) => {
  if (account) return k.reconnect(account, scopes ? { scopes, onProgress, signal } : { onProgress, signal });
  return device ? k.linkWithDevice(provider, { onProgress, signal }) : k.link(provider, { onProgress, signal });
});
/** Asks the provider who the stored tokens belong to. */
export const checkConnection = (account) => call((k) => k.checkConnection(account));
/**
 * Revokes and removes an account; with `signOut` ("Sign out everywhere"), the browser also
 * opens the provider's sign-out page, and the result says whether it did, or why not.
 */
export const unlink = (account, { signOut = false } = {}) =>
  call((k) => (signOut ? k.unlink(account, { signOut: true }) : k.unlink(account)));
/**
 * Calls `callback` with every change of the accounts, and what a redirect nobody waited for
 * did: an account linked, an error, or a provider's confirmation that the person signed out.
 */
export const onAccountsChanged = (callback) => call((k) => k.onAccountsChanged(callback));
