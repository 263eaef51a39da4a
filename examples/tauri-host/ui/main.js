// The whole integration from the webview: window.__TAURI__.keylink (withGlobalTauri), or
// `import * as keylink from 'tauri-plugin-keylink-api'` with a bundler. No token ever
// reaches this page.
const keylink = window.__TAURI__.keylink;

const status = document.getElementById('status');
const linkButton = document.getElementById('link');
const list = document.getElementById('accounts');
const answer = document.getElementById('answer');

function showAccounts(accounts) {
  list.replaceChildren(...accounts.map((a) => {
    const item = document.createElement('li');
    item.className = 'account';
    item.dataset.id = a.id;
    item.textContent = `${a.name ?? a.email ?? a.id} (${a.email ?? 'no email'})`;
    return item;
  }));
}

async function start() {
  const [provider] = await keylink.providers();
  showAccounts(await keylink.accounts());
  await keylink.onAccountsChanged((change) => {
    showAccounts(change.accounts);
    if (change.error) status.textContent = change.error.message;
  });
  linkButton.textContent = `Link your ${provider.name} account`;
  linkButton.disabled = false;
  linkButton.addEventListener('click', async () => {
    linkButton.disabled = true;
    try {
      const account = await keylink.link(provider.id, {
        onProgress: (p) => {
          if (p.kind === 'browserOpened') status.textContent = 'Continue in your browser…';
          if (p.kind === 'exchanging') status.textContent = 'Signed in; finishing…';
        },
      });
      status.textContent = `Linked ${account.email ?? account.id}.`;
    } catch (e) {
      status.textContent = `${e.code}: ${e.message}`;
    } finally {
      linkButton.disabled = false;
    }
  });
  document.getElementById('api').addEventListener('submit', async (event) => {
    event.preventDefault();
    const [account] = await keylink.accounts();
    if (!account) {
      answer.textContent = 'Link an account first.';
      return;
    }
    try {
      const response = await keylink.fetch(account.id, document.getElementById('api-url').value);
      answer.textContent = `${response.status}\n${await response.text()}`;
    } catch (e) {
      answer.textContent = `${e.code}: ${e.message}`;
    }
  });
  // The app's own async command (src/main.rs) asks the plugin for a token in Rust; a minimum
  // lifetime of a year makes it refresh first.
  document.getElementById('rust-token').addEventListener('click', async () => {
    const rustAnswer = document.getElementById('rust-answer');
    const [account] = await keylink.accounts();
    if (!account) {
      rustAnswer.textContent = 'Link an account first.';
      return;
    }
    try {
      rustAnswer.textContent = await window.__TAURI__.core.invoke('token_in_rust', {
        account: account.id,
        minTtlSecs: 365 * 24 * 3600,
      });
    } catch (e) {
      rustAnswer.textContent = `error: ${e}`;
    }
  });
  status.textContent = 'Ready.';
  document.body.dataset.ready = 'true';
}

start().catch((e) => {
  status.textContent = `${e.code ?? 'error'}: ${e.message ?? e}`;
  document.body.dataset.ready = 'true';
});
