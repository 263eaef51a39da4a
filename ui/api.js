// The one place the UI talks to the app: every IPC call goes through here. Errors always come
// back as {code, message}; no call returns a token.

function tauriInvoke(command, args) {
  const core = window.__TAURI__ && window.__TAURI__.core;
  if (!core) {
    return Promise.reject({ code: 'internal', message: 'Keylink must be opened as the desktop app.' });
  }
  return core.invoke(command, args);
}

async function call(command, args) {
  try {
    return await tauriInvoke(command, args);
  } catch (error) {
    if (error && typeof error === 'object' && typeof error.code === 'string') {
      throw error;
    }
    throw { code: 'internal', message: String(error || 'Something went wrong.') };
  }
}

/** Providers, accounts, the link in progress and notices not yet shown. */
export const appState = () => call('app_state');
/** Starts linking at `provider` (or, with `account`, signs in again as that account); the system browser opens. */
export const startLink = (provider, account = null) => call('start_link', { provider, account });
/** Starts linking at `provider` with a code entered on another device (RFC 8628). */
export const startDeviceLink = (provider) => call('start_device_link', { provider });
/** Cancels the link in progress. */
export const cancelLink = () => call('cancel_link');
/** Asks the provider who the stored tokens belong to. */
export const checkConnection = (account) => call('check_connection', { account });
/** Revokes and removes an account. */
export const unlink = (account) => call('unlink', { account });
