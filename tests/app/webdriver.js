// A small W3C WebDriver client (the few commands the app tests use), speaking to tauri-driver.

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

async function request(base, method, path, body, timeoutMs = 60000) {
  const response = await fetch(`${base}${path}`, {
    method,
    signal: AbortSignal.timeout(timeoutMs),
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${method} ${path}: HTTP ${response.status}: ${text.slice(0, 300)}`);
  }
  if (!response.ok || (json.value && json.value.error)) {
    const v = json.value || {};
    const error = new Error(`${method} ${path}: ${v.error || response.status}: ${v.message || text.slice(0, 300)}`);
    error.webdriver = v.error;
    throw error;
  }
  return json.value;
}

/** Waits until `condition()` returns a truthy value (which it returns), checking every 100 ms. */
export async function waitFor(what, condition, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError.message})` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export class Session {
  constructor(base, id) {
    this.base = base;
    this.id = id;
  }

  static async create(base, capabilities) {
    const value = await request(base, 'POST', '/session', {
      capabilities: { alwaysMatch: capabilities, firstMatch: [{}] },
    });
    return new Session(base, value.sessionId);
  }

  cmd(method, path, body) {
    return request(this.base, method, `/session/${this.id}${path}`, body);
  }

  async find(css) {
    const value = await this.cmd('POST', '/element', { using: 'css selector', value: css });
    return value[ELEMENT];
  }

  async findAll(css) {
    const values = await this.cmd('POST', '/elements', { using: 'css selector', value: css });
    return values.map((v) => v[ELEMENT]);
  }

  click(element) {
    return this.cmd('POST', `/element/${element}/click`, {});
  }

  text(element) {
    return this.cmd('GET', `/element/${element}/text`);
  }

  displayed(element) {
    return this.cmd('GET', `/element/${element}/displayed`);
  }

  /** Runs `script` (a function body) in the page with `args`; returns its result. */
  execute(script, args = []) {
    return this.cmd('POST', '/execute/sync', { script, args });
  }

  /** Runs `script` in the page; it must call `arguments[arguments.length - 1](result)`. */
  executeAsync(script, args = []) {
    return this.cmd('POST', '/execute/async', { script, args });
  }

  /** The handles of the app's windows. */
  windowHandles() {
    return this.cmd('GET', '/window/handles');
  }

  /** Makes the window `handle` the one commands go to. */
  switchToWindow(handle) {
    return this.cmd('POST', '/window', { handle });
  }

  async screenshot() {
    return Buffer.from(await this.cmd('GET', '/screenshot'), 'base64');
  }

  /** The visible text of the first element matching `css` ('' when there is none). */
  async textOf(css) {
    return this.execute(
      'const el = document.querySelector(arguments[0]); return el && !el.closest("[hidden]") ? el.innerText : "";',
      [css],
    );
  }

  async clickCss(css) {
    const element = await waitFor(`${css} to be displayed`, async () => {
      const el = await this.find(css);
      return (await this.displayed(el)) ? el : null;
    });
    await this.click(element);
  }

  async delete() {
    if (this.deleted) return;
    this.deleted = true;
    await request(this.base, 'DELETE', `/session/${this.id}`);
  }
}
