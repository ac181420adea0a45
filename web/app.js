/* kvmstack web UI: one page, plain JavaScript, no framework, no build step.
 *
 * It talks only to the REST API of the server that served it (/zstack/v1,
 * ZStack v1 style).  The session UUID lives in localStorage and travels only
 * in the Authorization header, never in a URL.  Every string that comes
 * from the API or the user reaches the page through textContent, attribute
 * values or form values; nothing is ever assigned to innerHTML.
 *
 * Layout of this file: DOM helpers; API client (requests, async jobs,
 * notifications); validators; form and dialog helpers; views (login, the
 * shell, list, details); the resource pages with their dialogs and wizards
 * (in the order of the sidebar); start-up. */
'use strict';

(function () {

const API = '/zstack/v1';
const STORE_KEY = 'kvmstack.session';
const POLL_MS = 3000;           /* Lists and details refresh this often. */
const JOB_POLL_MS = 500;        /* An async job's location is polled this often. */

/* ------------------------------------------------------------------ DOM */

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected',
                       'readOnly', 'multiple', 'name']);

/* Builds an element.  'props': text (textContent), class, on<event>
 * handlers, the properties in PROPS, anything else as an attribute.
 * 'kids': nodes, strings (text nodes), arrays of those; null is skipped. */
function h(tag, props, ...kids) {
    const el = document.createElement(tag);

    for (const [k, v] of Object.entries(props || {})) {
        if (v === undefined || v === null || v === false) {
            continue;
        }
        if (k === 'text') {
            el.textContent = String(v);
        } else if (k === 'class') {
            el.className = v;
        } else if (k.startsWith('on') && typeof v === 'function') {
            el.addEventListener(k.slice(2), v);
        } else if (PROPS.has(k)) {
            el[k] = v;
        } else {
            el.setAttribute(k, v === true ? '' : String(v));
        }
    }
    append(el, kids);
    return el;
}

function append(el, kids) {
    for (const k of kids) {
        if (k === null || k === undefined || k === false) {
            continue;
        }
        if (Array.isArray(k)) {
            append(el, k);
        } else if (k instanceof Node) {
            el.appendChild(k);
        } else {
            el.appendChild(document.createTextNode(String(k)));
        }
    }
}

let uidCounter = 0;
function uid(prefix) {
    uidCounter += 1;
    return (prefix || 'k') + '-' + uidCounter;
}

function sleep(ms) {
    return new Promise(resolve => setTimeout(resolve, ms));
}

/* Drops empty strings, null and undefined from 'obj' (the API refuses
 * unknown or malformed fields; absent ones take their defaults). */
function clean(obj) {
    const out = {};

    for (const [k, v] of Object.entries(obj)) {
        if (v !== '' && v !== null && v !== undefined) {
            out[k] = v;
        }
    }
    return out;
}

/* ------------------------------------------------------------ sessions */

const Session = {
    get() {
        try {
            const s = JSON.parse(localStorage.getItem(STORE_KEY));

            return s && /^[0-9a-f]{32}$/.test(s.uuid) ? s : null;
        } catch (e) {
            return null;
        }
    },
    set(s) {
        localStorage.setItem(STORE_KEY, JSON.stringify(s));
    },
    clear() {
        localStorage.removeItem(STORE_KEY);
    },
};

/* ------------------------------------------------------------- the API */

class ApiError extends Error {
    constructor(status, err, fallback) {
        const e = err || {};

        super(e.details || e.description || fallback || ('HTTP ' + status));
        this.status = status;
        this.code = e.code || '';
        this.field = e.field || '';
    }
}

/* One HTTP exchange with the API; answers {status, data}. */
async function request(method, path, body) {
    const headers = { Accept: 'application/json' };
    const s = Session.get();
    const init = { method, headers, cache: 'no-store',
                   credentials: 'omit', redirect: 'error' };
    let resp;
    let data = null;

    if (s) {
        headers.Authorization = 'OAuth ' + s.uuid;
    }
    if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
    }
    try {
        resp = await fetch(API + path, init);
    } catch (e) {
        throw new ApiError(0, null, 'cannot reach the management node ('
                           + e.message + ')');
    }
    try {
        const text = await resp.text();

        data = text ? JSON.parse(text) : null;
    } catch (e) {
        data = null;
    }
    return { status: resp.status, data };
}

/* Follows an async job: GET its location until it stops answering 202,
 * telling 'onProgress' each progress text.  Only the location's path is
 * used, so the session never goes to another origin. */
async function pollJob(location, onProgress) {
    const url = new URL(location, window.location.href);
    let last = null;

    if (!url.pathname.startsWith(API + '/api-jobs/')) {
        throw new ApiError(0, null, 'unexpected job location ' + location);
    }
    for (;;) {
        await sleep(JOB_POLL_MS);
        const r = await request('GET', url.pathname.slice(API.length));

        if (r.status !== 202) {
            return r;
        }
        const p = (r.data && r.data.progress) || 'running';

        if (onProgress && p !== last) {
            onProgress(p);
        }
        last = p;
    }
}

/* Calls the API; answers the JSON body, or throws ApiError with the API's
 * own message.  A 202 job is followed to its end.  A 401 ends the session
 * and brings the login page back. */
async function api(method, path, body, onProgress) {
    let r = await request(method, path, body);

    if (r.status === 202 && r.data && r.data.location) {
        if (onProgress) {
            onProgress(r.data.progress || 'accepted');
        }
        r = await pollJob(r.data.location, onProgress);
    }
    if (r.status === 401 && path !== '/accounts/login') {
        const err = new ApiError(401, r.data && r.data.error);

        sessionEnded('Your session ended (' + err.message
                     + '). Log in again.');
        throw err;
    }
    if (r.status < 200 || r.status >= 300) {
        throw new ApiError(r.status, r.data && r.data.error);
    }
    return r.data || {};
}

/* uuid -> name of everything listed so far, for reference columns. */
const names = new Map();
/* NIC uuid -> VM uuid, for the rule page's VM column. */
const vmOfNic = new Map();

/* Queries a collection with ZStack's q= conditions; answers inventories. */
async function query(path, conds, extra) {
    const p = new URLSearchParams();

    for (const c of conds || []) {
        p.append('q', c);
    }
    for (const [k, v] of Object.entries(extra || {})) {
        p.set(k, v);
    }
    if (!p.has('limit')) {
        p.set('limit', '1000');
    }
    const d = await api('GET', path + '?' + p.toString());
    const invs = d.inventories || [];

    for (const inv of invs) {
        if (inv.uuid && inv.name) {
            names.set(inv.uuid, inv.name);
        }
        if (inv.vmInstanceUuid) {
            vmOfNic.set(inv.uuid, inv.vmInstanceUuid);
        }
        for (const n of inv.vmNics || []) {
            vmOfNic.set(n.uuid, inv.uuid);
        }
    }
    return invs;
}

function nameOf(uuid) {
    return uuid ? (names.get(uuid) || uuid) : '';
}

/* ------------------------------------------------------- notifications */

const toastBox = () => document.getElementById('toasts');

/* A notification; kind 'run' (spinner), 'ok' or 'bad'.  Errors stay until
 * closed, successes go after a few seconds. */
function toast(kind, title, msg) {
    const t = h('div', { class: 'toast' });
    const head = h('div', { class: 't' });
    const body = h('div', { class: 'm' });
    const x = h('button', { class: 'x', 'aria-label': 'Dismiss', text: '\u00d7',
                            onclick: () => t.remove() });
    let timer = null;
    const api_ = {
        set(k, ti, m) {
            t.className = 'toast ' + (k === 'run' ? '' : k);
            t.setAttribute('role', k === 'bad' ? 'alert' : 'status');
            t.dataset.kind = k;
            head.replaceChildren(k === 'run' ? h('span', { class: 'spinner' }) : '',
                                 k === 'run' ? ' ' : '', ti);
            body.textContent = m || '';
            /* For scripts and tests: every notification, as it changes. */
            document.dispatchEvent(new CustomEvent('kvmstack:notify',
                                                   { detail: { kind: k, title: ti, message: m || '' } }));
            clearTimeout(timer);
            if (k === 'ok') {
                timer = setTimeout(() => t.remove(), 5000);
            }
        },
        close() {
            t.remove();
        },
    };

    append(t, [head, x, body]);
    api_.set(kind, title, msg);
    toastBox().prepend(t);
    while (toastBox().children.length > 5) {
        toastBox().lastChild.remove();
    }
    return api_;
}

/* Runs one API call with a notification that shows its progress and ends
 * in success or the API's error (the tutorial's "API finishing
 * notification").  Answers the API's answer; rethrows its error. */
async function op(title, method, path, body, onProgress) {
    const t = toast('run', title, 'working\u2026');

    try {
        const d = await api(method, path, body, p => {
            t.set('run', title, p);
            if (onProgress) {
                onProgress(p);
            }
        });

        t.set('ok', title, 'done');
        return d;
    } catch (e) {
        if (e.status === 401) {
            t.close();
        } else {
            t.set('bad', title + ' failed', e.message);
        }
        throw e;
    }
}

/* ---------------------------------------------------------- validators */

/* Each answers '' when the value is fine, else the message to show. */

function ipToInt(s) {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s || '');

    if (!m) {
        return null;
    }
    let n = 0;

    for (let i = 1; i <= 4; i++) {
        const b = Number(m[i]);

        if (b > 255 || (m[i].length > 1 && m[i][0] === '0')) {
            return null;
        }
        n = n * 256 + b;
    }
    return n;
}

function intToIp(n) {
    return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function maskPrefix(mask) {
    const n = ipToInt(mask);

    if (n === null) {
        return -1;
    }
    for (let p = 0; p <= 32; p++) {
        const m = p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0;

        if (m === n) {
            return p;
        }
    }
    return -1;
}

function prefixMask(p) {
    return p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0;
}

const V = {
    required: v => (String(v).trim() ? '' : 'This field is required.'),
    name: v => (!v ? 'A name is required.'
                : v.length > 255 ? 'At most 255 characters.'
                : v !== v.trim() ? 'No spaces at the start or the end.' : ''),
    description: v => (v.length > 2048 ? 'At most 2048 characters.' : ''),
    ip: v => (ipToInt(v) === null ? `'${v}' is not an IPv4 address (e.g. 192.168.0.1).` : ''),
    optIp: v => (v === '' ? '' : V.ip(v)),
    netmask: v => (V.ip(v) || (maskPrefix(v) < 0
                   ? `'${v}' is not a netmask (contiguous ones, e.g. 255.255.255.0).` : '')),
    host: v => (!v ? 'Required.'
                : ipToInt(v) !== null || /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(v)
                ? '' : `'${v}' is not an IP address or host name.`),
    port: v => (!/^\d+$/.test(v) ? 'A port number (1-65535).'
                : (Number(v) < 1 || Number(v) > 65535) ? 'Ports are 1-65535.' : ''),
    optPort: v => (v === '' ? '' : V.port(v)),
    intRange: (lo, hi) => v => (!/^\d+$/.test(v) || Number(v) < lo || Number(v) > hi
                                ? `A whole number from ${lo} to ${hi}.` : ''),
    cidr(v) {
        const m = /^([\d.]+)\/(\d{1,2})$/.exec(v || '');

        if (!m || ipToInt(m[1]) === null || Number(m[2]) > 32) {
            return `'${v}' is not a CIDR (e.g. 10.0.0.0/24).`;
        }
        const net = (ipToInt(m[1]) & prefixMask(Number(m[2]))) >>> 0;

        if (net !== ipToInt(m[1])) {
            return `'${v}' has host bits set; did you mean '${intToIp(net)}/${m[2]}'?`;
        }
        return '';
    },
    optCidr: v => (v === '' ? '' : V.cidr(v)),
    nfsUrl: v => (/^[^\s:/]+:\/\S*$/.test(v) ? ''
                  : `'${v}' is not an NFS URL host:/path (e.g. 192.168.0.212:/nfs_root).`),
    path: v => (/^\/\S*$/.test(v) ? '' : 'An absolute folder path, e.g. /backupStorage.'),
    imageUrl: v => (/^(https?|file):\/\/\S+$/.test(v) ? ''
                    : 'An http://, https:// or file:// URL without spaces.'),
    dnsName: v => (v === '' || /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(v)
                   ? '' : `'${v}' is not a valid name (letters, digits and '-', labels of 1 to 63).`),
    ifname: v => (/^[A-Za-z0-9_.:-]{1,15}$/.test(v) ? ''
                  : 'An interface name such as eth0 (at most 15 characters).'),
    memory: v => (parseSize(v) === null ? "A size such as 512M or 1G."
                  : parseSize(v) < 16 * 2 ** 20 ? 'At least 16M.' : ''),
};

/* "512M", "1G", "2048" (MiB) -> bytes, or null. */
function parseSize(v) {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*$/i.exec(v || '');

    if (!m) {
        return null;
    }
    const unit = { '': 2 ** 20, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

    return Math.round(Number(m[1]) * unit[m[2].toUpperCase()]);
}

function formatSize(n) {
    if (n === null || n === undefined || n === '') {
        return '';
    }
    const units = ['B', 'K', 'M', 'G', 'T'];
    let i = 0;

    while (n >= 1024 && i < units.length - 1) {
        n /= 1024;
        i += 1;
    }
    return (Number.isInteger(n) ? String(n) : n.toFixed(1)) + units[i];
}

/* Checks an IP range by start/end/netmask/gateway as the API does. */
function checkRange(start, end, mask, gw) {
    const s = ipToInt(start);
    const e = ipToInt(end);
    const g = ipToInt(gw);
    const p = maskPrefix(mask);

    if (s === null || e === null || g === null || p < 0) {
        return 'Fill in start IP, end IP, netmask and gateway.';
    }
    if (s > e) {
        return 'The start IP must not be after the end IP.';
    }
    const m = prefixMask(p);
    const net = (s & m) >>> 0;
    const bcast = (net | (~m >>> 0)) >>> 0;

    if (((e & m) >>> 0) !== net) {
        return 'Start and end IP must be in one subnet of that netmask.';
    }
    if (((g & m) >>> 0) !== net) {
        return 'The gateway must be inside the subnet of the range.';
    }
    if (g >= s && g <= e) {
        return 'The gateway must be outside the range.';
    }
    if (p < 31 && (s === net || e === bcast)) {
        return 'The range must not hold the network or broadcast address.';
    }
    return '';
}

/* ------------------------------------------------------ forms, dialogs */

function inp(props) {
    return h('input', Object.assign({ type: 'text', autocomplete: 'off',
                                      spellcheck: 'false' }, props || {}));
}

function textarea(props) {
    return h('textarea', Object.assign({ rows: 2 }, props || {}));
}

/* A <select>; 'items' are [value, label] pairs or strings. */
function sel(items, props) {
    const s = h('select', props || {});

    setOptions(s, items);
    return s;
}

function setOptions(s, items, emptyText) {
    const old = s.value;

    s.replaceChildren();
    for (const it of items) {
        const [v, l] = Array.isArray(it) ? it : [it, it];

        s.appendChild(h('option', { value: v, text: l }));
    }
    if (!items.length) {
        s.appendChild(h('option', { value: '', text: emptyText || '(none)' }));
    }
    if (old && items.some(it => (Array.isArray(it) ? it[0] : it) === old)) {
        s.value = old;
    }
}

/* A labelled form field with validation as the user types.  'check'
 * answers '' or a message; messages show once the user touched the
 * control (or at show(true)). */
function field(label, control, opts) {
    const o = opts || {};
    const id = uid('f');
    const err = h('div', { class: 'err', id: id + '-err', hidden: true });
    const note = h('div', { class: 'ok-note', hidden: true });
    const wrap = h('div', { class: 'field' },
                   h('label', { for: id, text: label }), control,
                   o.hint ? h('div', { class: 'hint', text: o.hint }) : null,
                   err, note);
    let touched = false;
    const f = {
        el: wrap,
        control,
        message() {
            if (wrap.hidden || !o.check) {
                return '';
            }
            return o.check(control.value, control) || '';
        },
        show(force) {
            const m = f.message();

            if (touched || force) {
                err.textContent = m;
                err.hidden = !m;
                wrap.classList.toggle('invalid', !!m);
                control.setAttribute('aria-invalid', m ? 'true' : 'false');
            }
            return m;
        },
        note(text) {
            note.textContent = text || '';
            note.hidden = !text;
        },
        get value() {
            return control.type === 'checkbox' ? control.checked : control.value.trim();
        },
    };

    control.id = id;
    control.setAttribute('aria-describedby', id + '-err');
    const touch = () => {
        touched = true;
    };

    control.addEventListener('input', touch);
    control.addEventListener('change', touch);
    return f;
}

function checkField(label, props) {
    const id = uid('c');
    const box = h('input', Object.assign({ type: 'checkbox', id }, props || {}));
    const el = h('div', { class: 'field' },
                 h('label', { class: 'check', for: id }, box, label));

    return { el, control: box, get value() { return box.checked; },
             message: () => '', show: () => '' };
}

/* Checkboxes, one per item {value, label}; answers {el, values()}. */
function checkList(label, items, emptyText) {
    const wrap = h('div', { class: 'choices', role: 'group', 'aria-label': label });
    const boxes = [];

    for (const it of items) {
        const box = h('input', { type: 'checkbox', value: it.value,
                                 checked: !!it.checked });

        boxes.push(box);
        wrap.appendChild(h('label', {}, box, it.label));
    }
    if (!items.length) {
        wrap.appendChild(h('div', { class: 'none', text: emptyText }));
    }
    return { el: h('div', { class: 'field' }, h('div', { class: 'label', text: label }), wrap),
             values: () => boxes.filter(b => b.checked).map(b => b.value) };
}

/* Radio buttons; 'items' {value, label}; answers {el, value, onchange}. */
function radios(label, items, selected) {
    const name = uid('r');
    const wrap = h('div', { class: 'choices', role: 'radiogroup', 'aria-label': label });
    const r = {
        el: h('div', { class: 'field' }, h('div', { class: 'label', text: label }), wrap),
        get value() {
            const c = wrap.querySelector('input:checked');

            return c ? c.value : '';
        },
        set(items2, sel2) {
            wrap.replaceChildren();
            for (const it of items2) {
                wrap.appendChild(h('label', {},
                                   h('input', { type: 'radio', name, value: it.value,
                                                checked: it.value === sel2 }),
                                   it.label));
            }
            if (!items2.length) {
                wrap.appendChild(h('div', { class: 'none', text: '(none)' }));
            }
        },
    };

    r.set(items, selected);
    return r;
}

/* A list of things added in a wizard step (IP ranges, DNS, services). */
function addedList(label, emptyText) {
    const box = h('div', { class: 'added', 'aria-label': label, role: 'list' });
    const items = [];
    const l = {
        el: box,
        items,
        add(value, text) {
            items.push(value);
            l.render(text);
        },
        render() {
            box.replaceChildren();
            if (!items.length) {
                box.appendChild(h('div', { class: 'none', text: emptyText }));
            }
            items.forEach((it, i) => {
                box.appendChild(h('div', { role: 'listitem' },
                                  h('span', { text: it.text }),
                                  h('button', { type: 'button', class: 'btn small',
                                                text: 'Remove',
                                                'aria-label': 'Remove ' + it.text,
                                                onclick: () => {
                                                    items.splice(i, 1);
                                                    l.render();
                                                    box.dispatchEvent(new Event('input', { bubbles: true }));
                                                } })));
            });
        },
    };

    l.render();
    return l;
}

/* Fills select 's' with the inventories of a query; answers them. */
async function fillSelect(s, path, conds, label, emptyText) {
    let invs = [];

    try {
        invs = await query(path, conds);
    } catch (e) {
        emptyText = 'cannot list: ' + e.message;
    }
    setOptions(s, invs.map(i => [i.uuid, label ? label(i) : i.name]), emptyText);
    s.dispatchEvent(new Event('change', { bubbles: true }));
    return invs;
}

let openDialogs = 0;

/* A dialog of one or more steps ("wizard").  opts: title, finish (label of
 * the last button), steps [{title, build(ctx, w) -> {el, fields, valid,
 * onShow}}], submit(ctx, w) (async; its error is shown in the dialog),
 * danger (red finish button), done (called after a successful submit). */
function wizard(opts) {
    const ctx = opts.ctx || {};
    const titleId = uid('t');
    const dlg = h('dialog', { class: 'modal', 'aria-labelledby': titleId });
    const stepsOl = h('ol', { class: 'steps' });
    const body = h('div', { class: 'body' });
    const errBox = h('div', { class: 'api-error', role: 'alert', hidden: true });
    const status = h('div', { class: 'status', 'aria-live': 'polite' });
    const cancel = h('button', { type: 'button', class: 'btn', text: 'Cancel' });
    const back = h('button', { type: 'button', class: 'btn', text: 'Back' });
    const next = h('button', { type: 'button', class: 'btn primary', text: 'Next' });
    const finish = h('button', { type: 'button',
                                 class: 'btn ' + (opts.danger ? 'danger' : 'primary'),
                                 text: opts.finish || 'Create' });
    const built = [];
    let cur = 0;
    let running = false;
    const w = {
        ctx,
        dialog: dlg,
        status(text, spin) {
            status.replaceChildren(spin ? h('span', { class: 'spinner' }) : '',
                                   spin ? ' ' : '', text || '');
        },
        error(msg) {
            errBox.textContent = msg || '';
            errBox.hidden = !msg;
        },
        refresh,
        close,
    };

    function stepValid(i) {
        const s = built[i];
        let ok = true;

        for (const f of s.fields || []) {
            if (f.show(false)) {
                ok = false;
            }
        }
        return ok && (!s.valid || s.valid());
    }

    function refresh() {
        const valid = stepValid(cur);

        next.disabled = running || !valid;
        finish.disabled = running || !valid;
        back.disabled = running;
    }

    function show(i) {
        cur = i;
        built.forEach((s, j) => {
            s.box.hidden = j !== i;
        });
        [...stepsOl.children].forEach((li, j) => {
            li.classList.toggle('current', j === i);
            if (j === i) {
                li.setAttribute('aria-current', 'step');
            } else {
                li.removeAttribute('aria-current');
            }
        });
        back.hidden = i === 0;
        next.hidden = i === built.length - 1;
        finish.hidden = i !== built.length - 1;
        w.error('');
        if (built[i].onShow) {
            Promise.resolve(built[i].onShow()).then(refresh, e => w.error(e.message));
        }
        refresh();
        const first = built[i].box.querySelector('input:not([type=hidden]):not([readonly]), select, textarea');

        if (first) {
            first.focus();
        }
    }

    function close() {
        if (dlg.open) {
            dlg.close();
        }
    }

    opts.steps.forEach((st, i) => {
        const b = st.build(ctx, w);
        const box = h('div', { class: 'step', 'data-step': i + 1 }, b.el);

        b.box = box;
        built.push(b);
        body.appendChild(box);
        if (opts.steps.length > 1) {
            stepsOl.appendChild(h('li', { text: st.title }));
        }
    });
    append(dlg, [
        h('header', {}, h('h2', { id: titleId, text: opts.title }),
          h('button', { type: 'button', class: 'x', 'aria-label': 'Close', text: '\u00d7',
                        onclick: close })),
        opts.steps.length > 1 ? stepsOl : null, body, errBox,
        h('footer', {}, status, cancel, back, next, finish),
    ]);
    dlg.addEventListener('input', refresh);
    dlg.addEventListener('change', refresh);
    dlg.addEventListener('close', () => {
        openDialogs -= 1;
        dlg.remove();
    });
    cancel.onclick = close;
    back.onclick = () => show(cur - 1);
    next.onclick = () => {
        if (stepValid(cur)) {
            show(cur + 1);
        }
    };
    finish.onclick = async () => {
        for (const f of built[cur].fields || []) {
            f.show(true);
        }
        if (!stepValid(cur)) {
            return;
        }
        running = true;
        refresh();
        w.error('');
        w.status('working\u2026', true);
        try {
            await opts.submit(ctx, w);
            close();
            if (opts.done) {
                opts.done(ctx);
            }
            refreshView();
        } catch (e) {
            w.status('');
            w.error(e.message);
            refreshView();
        } finally {
            running = false;
            refresh();
        }
    };
    /* Enter in a text input goes to the next step or finishes. */
    dlg.addEventListener('keydown', ev => {
        if (ev.key === 'Enter' && ev.target.tagName === 'INPUT'
            && ev.target.type !== 'checkbox' && ev.target.type !== 'radio'
            && !ev.target.dataset.enterAdds) {
            ev.preventDefault();
            (next.hidden ? finish : next).click();
        }
    });
    document.body.appendChild(dlg);
    openDialogs += 1;
    dlg.showModal();
    show(0);
    return w;
}

/* A confirmation dialog whose button runs 'action'. */
function confirmDialog(title, text, button, action, danger) {
    return wizard({
        title, finish: button, danger,
        steps: [{ title, build: () => ({ el: h('p', { text }) }) }],
        submit: action,
    });
}

/* -------------------------------------------------------------- views */

const app = () => document.getElementById('app');
let viewSeq = 0;                /* Bumped at each view change. */
let current = null;             /* {refresh()} of the view on screen. */
let shell = null;               /* The sidebar layout, while logged in. */

function refreshView() {
    if (current && current.refresh) {
        current.refresh().catch(() => {});
    }
}

function sessionEnded(msg) {
    Session.clear();
    shell = null;
    current = null;
    viewSeq += 1;
    for (const d of document.querySelectorAll('dialog')) {
        d.close();
    }
    history.replaceState(null, '', '/login');
    showLogin(msg);
}

function showLogin(msg) {
    const name = inp({ name: 'accountName', value: 'admin', autocomplete: 'username' });
    const pass = h('input', { type: 'password', name: 'password',
                              autocomplete: 'current-password' });
    const err = h('div', { class: 'api-error', role: 'alert', hidden: !msg, text: msg || '' });
    const btn = h('button', { type: 'submit', class: 'btn primary', text: 'Log in' });
    const fName = field('Account name', name);
    const fPass = field('Password', pass);
    const form = h('form', { class: 'login', 'aria-label': 'Log in' },
                   h('h1', { text: 'kvmstack' }),
                   h('p', { class: 'sub', text: 'KVM cloud management' }),
                   fName.el, fPass.el, err, btn);

    form.addEventListener('submit', async ev => {
        ev.preventDefault();
        btn.disabled = true;
        err.hidden = true;
        try {
            const d = await api('PUT', '/accounts/login', {
                logInByAccount: { accountName: name.value.trim(), password: pass.value },
            });
            const inv = d.inventory || {};

            Session.set({ uuid: inv.uuid, accountUuid: inv.accountUuid,
                          accountName: name.value.trim(), expiredDate: inv.expiredDate });
            pass.value = '';
            if (!/^#\//.test(location.hash)) {
                history.replaceState(null, '', '/#/zone');
            }
            route();
            if (inv.passwordChangeRequired) {
                changePassword(true);
            }
        } catch (e) {
            err.textContent = e.message;
            err.hidden = false;
            btn.disabled = false;
            pass.select();
        }
    });
    document.title = 'Log in - kvmstack';
    app().replaceChildren(h('div', { class: 'login-wrap' }, form));
    (name.value ? pass : name).focus();
}

async function logout() {
    const s = Session.get();

    if (s) {
        try {
            await request('DELETE', '/accounts/sessions/' + s.uuid);
        } catch (e) {
            /* Logged out locally all the same. */
        }
    }
    sessionEnded('');
    const t = toast('ok', 'Logged out', '');

    setTimeout(() => t.close(), 3000);
}

function changePassword(forced) {
    const s = Session.get();
    const oldF = field('Current password', h('input', { type: 'password',
                                                        autocomplete: 'current-password' }),
                       { check: V.required });
    const newF = field('New password', h('input', { type: 'password',
                                                    autocomplete: 'new-password' }),
                       { check: v => (v.length < 8 ? 'At least 8 characters.' : ''),
                         hint: 'At least 8 characters.' });
    const againF = field('Repeat the new password',
                         h('input', { type: 'password', autocomplete: 'new-password' }),
                         { check: v => (v !== newF.control.value ? 'The passwords differ.' : '') });
    const w = wizard({
        title: forced ? 'Choose a new password' : 'Change password',
        finish: 'Change',
        steps: [{
            title: 'Password',
            build: () => ({
                el: [forced ? h('p', { class: 'note',
                                       text: 'This account must change its password before going on.' })
                            : null, oldF.el, newF.el, againF.el],
                fields: [oldF, newF, againF],
            }),
        }],
        submit: async () => {
            await op('Change password', 'PUT', '/accounts/' + s.accountUuid + '/actions', {
                updateAccount: { password: newF.control.value, oldPassword: oldF.control.value },
            });
        },
    });

    if (forced) {
        w.dialog.addEventListener('cancel', ev => ev.preventDefault());
    }
}

function ensureShell() {
    if (shell) {
        return shell;
    }
    const s = Session.get();
    const nav = h('nav', { class: 'side', 'aria-label': 'Resources' });
    const main = h('main', { id: 'main' });

    for (const group of GROUPS) {
        nav.appendChild(h('h3', { text: group }));
        for (const p of PAGES.filter(x => x.group === group)) {
            nav.appendChild(h('a', { href: '#/' + p.id, 'data-page': p.id, text: p.title }));
        }
    }
    const layout = h('div', { class: 'shell' },
                     h('header', { class: 'topbar' },
                       h('div', { class: 'brand' },
                         h('img', { src: '/favicon.svg', alt: '' }), 'kvmstack'),
                       h('span', { class: 'who', text: s ? s.accountName : '' }),
                       h('button', { type: 'button', class: 'btn', text: 'Change password',
                                     onclick: () => changePassword(false) }),
                       h('button', { type: 'button', class: 'btn', text: 'Log out',
                                     onclick: logout })),
                     nav, main);

    app().replaceChildren(layout);
    shell = { nav, main };
    return shell;
}

function route() {
    if (!Session.get()) {
        if (location.pathname !== '/login') {
            history.replaceState(null, '', '/login');
        }
        showLogin('');
        return;
    }
    if (location.pathname !== '/') {
        history.replaceState(null, '', '/' + (location.hash || '#/zone'));
    }
    const m = /^#\/([a-z0-9-]+)(?:\/([0-9a-f]{32}))?$/.exec(location.hash);
    const page = (m && PAGES.find(p => p.id === m[1])) || null;

    if (!page) {
        location.replace('#/zone');
        return;
    }
    const sh = ensureShell();

    for (const a of sh.nav.querySelectorAll('a')) {
        const on = a.dataset.page === page.id;

        a.classList.toggle('active', on);
        if (on) {
            a.setAttribute('aria-current', 'page');
        } else {
            a.removeAttribute('aria-current');
        }
    }
    document.title = page.title + ' - kvmstack';
    if (m[2]) {
        showDetails(page, m[2]);
    } else {
        showList(page);
    }
}

/* Cell renderers. */
const BADGES = {
    ok: ['Enabled', 'Connected', 'Running', 'Ready', 'Succeeded'],
    warn: ['Connecting', 'Starting', 'Stopping', 'Pending', 'Downloading', 'Maintenance',
           'PreMaintenance', 'Rebooting', 'Migrating'],
    bad: ['Disabled', 'Disconnected', 'Error', 'Destroyed', 'Failed', 'Unknown'],
};

function badge(v) {
    const kind = Object.keys(BADGES).find(k => BADGES[k].includes(v)) || '';

    return v === null || v === undefined || v === '' ? ''
        : h('span', { class: 'badge ' + kind, text: v });
}

function yesNo(v) {
    return v === true ? 'yes' : v === false ? 'no' : '';
}

const C = {
    name: { label: 'Name', key: 'name' },
    desc: { label: 'Description', get: i => i.description || '' },
    state: { label: 'State', get: i => badge(i.state) },
    status: { label: 'Status', get: i => badge(i.status) },
    created: { label: 'Created', get: i => i.createDate || '' },
    zone: { label: 'Zone', get: i => nameOf(i.zoneUuid) },
    key: (label, key) => ({ label, get: i => (i[key] === null || i[key] === undefined ? '' : String(i[key])) }),
    ref: (label, key) => ({ label, get: i => nameOf(i[key]) }),
};

/* The Action menu button of a page for the inventory 'getInv()' gives. */
function actionMenu(page, getInv) {
    const btn = h('button', { type: 'button', class: 'btn', 'aria-haspopup': 'menu',
                              'aria-expanded': 'false', text: 'Action \u25be' });
    const menu = h('div', { class: 'menu', role: 'menu', hidden: true,
                            'aria-label': page.title + ' actions' });
    const wrap = h('div', { class: 'menu-wrap' }, btn, menu);
    const hide = () => {
        menu.hidden = true;
        btn.setAttribute('aria-expanded', 'false');
    };

    btn.addEventListener('click', ev => {
        ev.stopPropagation();
        if (!menu.hidden) {
            hide();
            return;
        }
        const inv = getInv();

        if (!inv) {
            return;
        }
        menu.replaceChildren();
        for (const a of page.actions || []) {
            const ok = !a.when || a.when(inv);

            menu.appendChild(h('button', {
                type: 'button', role: 'menuitem', text: a.label, disabled: !ok,
                onclick: ev2 => {
                    ev2.stopPropagation();
                    hide();
                    a.run(inv, page);
                },
            }));
        }
        menu.hidden = false;
        btn.setAttribute('aria-expanded', 'true');
        const first = menu.querySelector('button:not(:disabled)');

        if (first) {
            first.focus();
        }
    });
    menu.addEventListener('keydown', ev => {
        if (ev.key === 'Escape') {
            hide();
            btn.focus();
        }
    });
    return { el: wrap, btn, hide };
}

function cellValue(col, inv) {
    if (col.get) {
        return col.get(inv);
    }
    return inv[col.key] === null || inv[col.key] === undefined ? '' : String(inv[col.key]);
}

function showList(page) {
    const seq = ++viewSeq;
    const sh = ensureShell();
    const tbody = h('tbody');
    const count = h('span', { class: 'count', 'aria-live': 'polite' });
    const search = h('input', { type: 'search', class: 'search', placeholder: 'Search by name',
                                'aria-label': 'Search by name' });
    let rows = [];
    let selected = null;
    let lastJson = '';
    let timer = null;
    const menu = actionMenu(page, () => rows.find(r => r.uuid === selected) || null);

    function markSelected() {
        for (const tr of tbody.children) {
            const on = tr.dataset.uuid === selected;

            tr.classList.toggle('selected', on);
            tr.setAttribute('aria-selected', on ? 'true' : 'false');
        }
        menu.btn.disabled = !rows.some(r => r.uuid === selected);
    }

    function render() {
        tbody.replaceChildren();
        if (!rows.length) {
            tbody.appendChild(h('tr', {}, h('td', {
                class: 'empty', colspan: page.columns.length,
                text: search.value.trim() ? 'Nothing matches this search.'
                    : 'No ' + page.title.toLowerCase() + ' yet.' + (page.create ? ' Click \u201c'
                    + page.newLabel + '\u201d to create one.' : ''),
            })));
        }
        for (const inv of rows) {
            const tr = h('tr', { 'data-uuid': inv.uuid, 'data-name': inv.name || '' });

            page.columns.forEach((col, i) => {
                let v = cellValue(col, inv);

                if (i === 0) {
                    v = h('button', { type: 'button', class: 'linklike', text: inv.name || inv.uuid,
                                      title: 'Details of ' + (inv.name || inv.uuid),
                                      onclick: ev => {
                                          ev.stopPropagation();
                                          location.hash = '#/' + page.id + '/' + inv.uuid;
                                      } });
                }
                tr.appendChild(h('td', { class: col.mono ? 'mono' : '' }, v));
            });
            tr.tabIndex = 0;
            tr.addEventListener('click', () => {
                selected = inv.uuid;
                markSelected();
            });
            tr.addEventListener('keydown', ev => {
                if ((ev.key === 'Enter' || ev.key === ' ') && ev.target === tr) {
                    ev.preventDefault();
                    selected = inv.uuid;
                    markSelected();
                }
            });
            tbody.appendChild(tr);
        }
        markSelected();
    }

    async function refresh() {
        const conds = (page.conds || []).slice();
        const term = search.value.trim();

        if (term) {
            conds.push('name~=%' + term + '%');
        }
        for (const r of page.refs || []) {
            await query(r);
        }
        const invs = await query(page.path, conds, { sort: '+createDate' });

        if (seq !== viewSeq) {
            return;
        }
        const json = JSON.stringify(invs) + '|' + term;

        count.textContent = invs.length + (invs.length === 1 ? ' item' : ' items');
        if (json !== lastJson) {
            lastJson = json;
            rows = invs;
            render();
        }
    }

    search.addEventListener('input', () => {
        clearTimeout(timer);
        timer = setTimeout(() => refresh().catch(() => {}), 250);
    });
    sh.main.replaceChildren(
        h('div', { class: 'page-head' }, h('h1', { text: page.title })),
        h('div', { class: 'toolbar' },
          page.create ? h('button', { type: 'button', class: 'btn primary', text: page.newLabel,
                                      onclick: () => page.create() }) : null,
          page.actions && page.actions.length ? menu.el : null,
          search, count),
        h('div', { class: 'table-wrap' },
          h('table', { 'aria-label': page.title },
            h('thead', {}, h('tr', {}, page.columns.map(c => h('th', { text: c.label })))),
            tbody)));
    markSelected();
    current = { refresh, page };
    refresh().catch(e => {
        if (seq === viewSeq && e.status !== 401) {
            count.textContent = 'Cannot list: ' + e.message;
        }
    });
}

function humanize(key) {
    if (key === 'uuid') {
        return 'UUID';
    }
    return key.replace(/Uuids?$/, m => (m === 'Uuids' ? 's' : ''))
        .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
        .replace(/^./, c => c.toUpperCase());
}

function renderValue(key, v, parent) {
    if (v === null || v === undefined || v === '') {
        return h('span', { class: 'muted', text: '\u2014' });
    }
    if (Array.isArray(v)) {
        if (!v.length) {
            return h('span', { text: 'none' });
        }
        if (v.every(x => typeof x !== 'object' || x === null)) {
            return v.map(x => (/Uuids$/.test(key) ? nameOf(x) : String(x))).join(', ');
        }
        const keys = [...new Set(v.flatMap(x => Object.keys(x || {})))]
            .filter(k => !['uuid', 'createDate', 'lastOpDate', 'description'].includes(k)
                    && !v.every(x => parent && x[k] === parent.uuid));

        return h('table', {},
                 h('thead', {}, h('tr', {}, keys.map(k => h('th', { text: humanize(k) })))),
                 h('tbody', {}, v.map(x => h('tr', {}, keys.map(k => h('td', {
                     text: x[k] === null || x[k] === undefined ? ''
                         : /Uuid$/.test(k) && names.has(x[k]) ? nameOf(x[k])
                         : typeof x[k] === 'object' ? JSON.stringify(x[k]) : String(x[k]),
                 }))))));
    }
    if (typeof v === 'object') {
        return h('span', { class: 'mono', text: JSON.stringify(v) });
    }
    if (typeof v === 'boolean') {
        return yesNo(v);
    }
    if (key !== 'uuid' && /Uuid$/.test(key) && names.has(v)) {
        return h('span', {}, names.get(v), ' ', h('span', { class: 'mono hint', text: '(' + v + ')' }));
    }
    if (['state', 'status'].includes(key)) {
        return badge(v);
    }
    if (/memory|Capacity$|^size$|actualSize/i.test(key) && typeof v === 'number') {
        return formatSize(v) + (v >= 1024 ? ' (' + v + ' bytes)' : '');
    }
    return String(v);
}

function showDetails(page, uuid) {
    const seq = ++viewSeq;
    const sh = ensureShell();
    const title = h('h1', { text: '' });
    const dl = h('dl');
    const extra = h('div');
    let inv = null;
    let lastJson = '';
    const menu = actionMenu(page, () => inv);

    async function refresh() {
        for (const r of page.refs || []) {
            await query(r);
        }
        let d;

        try {
            d = await api('GET', (page.base || page.path) + '/' + uuid);
        } catch (e) {
            if (seq === viewSeq && e.status === 404) {
                inv = null;
                menu.btn.disabled = true;
                title.textContent = 'Not found';
                dl.replaceChildren(h('dd', { text: 'This ' + page.noun + ' does not exist (any more).' }));
            }
            throw e;
        }
        if (seq !== viewSeq) {
            return;
        }
        inv = (d.inventories || [])[0] || d.inventory || null;
        const json = JSON.stringify(inv);

        menu.btn.disabled = !inv;
        if (!inv || json === lastJson) {
            return;
        }
        lastJson = json;
        title.textContent = inv.name || inv.uuid;
        document.title = (inv.name || inv.uuid) + ' - ' + page.title + ' - kvmstack';
        dl.replaceChildren();
        for (const [k, v] of Object.entries(inv)) {
            dl.appendChild(h('dt', { text: humanize(k) }));
            dl.appendChild(h('dd', { 'data-key': k }, renderValue(k, v, inv)));
        }
        if (page.detailsExtra) {
            page.detailsExtra(inv, extra).catch(() => {});
        }
    }

    sh.main.replaceChildren(
        h('div', { class: 'crumb' }, h('a', { href: '#/' + page.id, text: page.title }), ' \u203a details'),
        h('div', { class: 'page-head' }, title),
        page.actions && page.actions.length ? h('div', { class: 'toolbar' }, menu.el) : null,
        h('div', { class: 'details' }, dl, extra));
    menu.btn.disabled = true;
    current = { refresh, page };
    refresh().catch(() => {});
}

/* The last API job on a resource (host or backup storage bootstrap): its
 * state, progress and log, under the details. */
async function jobLog(inv, box) {
    const jobs = await query('/api-jobs', ['resourceUuid=' + inv.uuid],
                             { sort: '-createDate', limit: '1' });

    box.replaceChildren();
    if (!jobs.length) {
        return;
    }
    const j = jobs[0];

    append(box, [h('h2', { text: 'Last job: ' + j.apiName + ' (' + j.state + ')' }),
                 h('pre', { class: 'log', text: j.log || j.progress || '' })]);
}

/* ------------------------------------------------------ common actions */

function stateActions(kind) {
    const change = ev => (inv, page) => op(
        (ev === 'enable' ? 'Enable ' : 'Disable ') + page.noun + ' ' + inv.name,
        'PUT', page.path + '/' + inv.uuid + '/actions',
        { ['change' + kind + 'State']: { stateEvent: ev } }).then(refreshView, refreshView);

    return [
        { label: 'Enable', when: i => i.state !== 'Enabled', run: change('enable') },
        { label: 'Disable', when: i => i.state === 'Enabled', run: change('disable') },
    ];
}

const deleteAction = {
    label: 'Delete',
    run: (inv, page) => confirmDialog(
        'Delete ' + page.noun,
        'Delete ' + page.noun + ' \u201c' + (inv.name || inv.uuid) + '\u201d? This cannot be undone.',
        'Delete',
        () => op('Delete ' + page.noun + ' ' + (inv.name || inv.uuid), 'DELETE',
                 (page.base || page.path) + '/' + inv.uuid).then(() => {
            if (/\/[0-9a-f]{32}$/.test(location.hash)) {
                location.hash = '#/' + page.id;
            }
        }),
        true),
};

/* Attach 'inv' to one of 'targets' (e.g. a primary storage to a cluster). */
function attachAction(label, targetPath, targetNoun, conds, pathFor, detach) {
    return {
        label,
        run: inv => {
            const s = sel([]);
            const f = field(targetNoun[0].toUpperCase() + targetNoun.slice(1), s,
                            { check: V.required });

            wizard({
                title: label + ': ' + inv.name,
                finish: detach ? 'Detach' : 'Attach',
                steps: [{
                    title: label,
                    build: () => {
                        fillSelect(s, targetPath, conds(inv), null, '(no ' + targetNoun + ')');
                        return { el: f.el, fields: [f] };
                    },
                }],
                submit: () => op(label + ' ' + inv.name + ' \u2194 ' + nameOf(s.value),
                                 detach ? 'DELETE' : 'POST', pathFor(inv, s.value),
                                 detach ? undefined : { params: {} }),
            });
        },
    };
}

/* ------------------------------------------------------ zones, clusters */

function newZone() {
    const name = field('Name', inp(), { check: V.name });
    const desc = field('Description', textarea(), { check: V.description });

    wizard({
        title: 'New Zone', finish: 'Create',
        steps: [{ title: 'Zone', build: () => ({ el: [name.el, desc.el], fields: [name, desc] }) }],
        submit: () => op('Create zone ' + name.value, 'POST', '/zones',
                         { params: clean({ name: name.value, description: desc.value }) }),
    });
}

function zoneField() {
    const s = sel([]);
    const f = field('Zone', s, { check: V.required });

    fillSelect(s, '/zones', [], null, '(no zone: create one first)');
    return f;
}

function newCluster() {
    const zone = zoneField();
    const name = field('Cluster name', inp(), { check: V.name });
    const desc = field('Description', textarea(), { check: V.description });
    const hyp = field('Hypervisor', sel(['KVM']));
    const psBox = h('div');
    const l2Box = h('div');
    let psList = checkList('Primary storage', [], '');
    let l2List = checkList('L2 networks', [], '');

    wizard({
        title: 'New Cluster', finish: 'Create',
        steps: [
            { title: 'Cluster',
              build: () => ({ el: [zone.el, name.el, desc.el, hyp.el], fields: [zone, name, desc] }) },
            { title: 'Attach primary storage',
              build: () => ({
                  el: psBox,
                  onShow: async () => {
                      const ps = await query('/primary-storage', ['zoneUuid=' + zone.value]);

                      psList = checkList('Primary storage to attach',
                                         ps.map(p => ({ value: p.uuid, label: p.name + ' (' + p.url + ')' })),
                                         'No primary storage in this zone yet; attach it later.');
                      psBox.replaceChildren(psList.el);
                  },
              }) },
            { title: 'Attach L2 network',
              build: () => ({
                  el: l2Box,
                  onShow: async () => {
                      const l2 = await query('/l2-networks', ['zoneUuid=' + zone.value]);

                      l2List = checkList('L2 networks to attach',
                                         l2.map(n => ({ value: n.uuid, label: n.name + ' (' + n.type + ')' })),
                                         'No L2 network in this zone yet; attach it later.');
                      l2Box.replaceChildren(l2List.el);
                  },
              }) },
        ],
        submit: async ctx => {
            if (!ctx.cluster) {
                const d = await op('Create cluster ' + name.value, 'POST', '/clusters', {
                    params: clean({ name: name.value, description: desc.value,
                                    zoneUuid: zone.value, hypervisorType: hyp.value }),
                });

                ctx.cluster = d.inventory;
            }
            await attachAll(ctx, psList.values(), ps => op(
                'Attach primary storage ' + nameOf(ps) + ' to cluster ' + ctx.cluster.name,
                'POST', '/clusters/' + ctx.cluster.uuid + '/primary-storage/' + ps, { params: {} }));
            await attachAll(ctx, l2List.values(), l2 => op(
                'Attach L2 network ' + nameOf(l2) + ' to cluster ' + ctx.cluster.name,
                'POST', '/l2-networks/' + l2 + '/clusters/' + ctx.cluster.uuid, { params: {} }));
        },
    });
}

/* Runs 'fn' for each of 'uuids' not yet done in ctx (so that a retry after
 * a failure does not repeat what worked). */
async function attachAll(ctx, uuids, fn) {
    ctx.attached = ctx.attached || new Set();
    for (const u of uuids) {
        if (!ctx.attached.has(u)) {
            await fn(u);
            ctx.attached.add(u);
        }
    }
}

/* ---------------------------------------------------------------- hosts */

function newHost() {
    const zone = zoneField();
    const cs = sel([]);
    const cluster = field('Cluster', cs, { check: V.required });
    const name = field('Host name', inp(), { check: V.name });
    const desc = field('Description', textarea(), { check: V.description });
    const ip = field('Host IP', inp({ placeholder: '192.168.0.212' }), { check: V.host,
                     hint: 'The management IP address that kvmstack reaches over SSH.' });
    const port = field('SSH port', inp({ value: '22', inputmode: 'numeric' }), { check: V.port });
    const user = field('Username', inp({ value: 'root', readOnly: true }));
    const pass = field('Password', h('input', { type: 'password', autocomplete: 'new-password' }),
                       { check: V.required,
                         hint: "root's SSH password; used once for the first login, never stored." });
    const fp = field('SSH host key fingerprint (optional)', inp({ placeholder: 'SHA256:...' }),
                     { hint: 'Given, the host key must match it; empty, the first key seen is trusted.' });

    zone.control.addEventListener('change', () => {
        if (zone.value) {
            fillSelect(cs, '/clusters', ['zoneUuid=' + zone.value], null, '(no cluster in this zone)');
        }
    });
    wizard({
        title: 'New Host', finish: 'Add',
        steps: [{ title: 'Host',
                  build: () => ({ el: [zone.el, cluster.el, name.el, desc.el, ip.el, port.el,
                                       user.el, pass.el, fp.el],
                                  fields: [zone, cluster, name, desc, ip, port, pass] }) }],
        submit: (ctx, w) => op('Add host ' + name.value, 'POST', '/hosts/kvm', {
            params: clean({ name: name.value, description: desc.value, clusterUuid: cs.value,
                            managementIp: ip.value, sshPort: Number(port.value),
                            username: 'root', password: pass.control.value,
                            sshHostKeyFingerprint: fp.value }),
        }, p => w.status(p, true)),
    });
}

function hostState(ev, label) {
    return (inv, page) => op(label + ' host ' + inv.name, 'PUT', '/hosts/' + inv.uuid + '/actions',
                             { changeHostState: { stateEvent: ev } }).then(refreshView, refreshView);
}

/* -------------------------------------------------------------- storage */

function newPrimaryStorage() {
    const zone = zoneField();
    const name = field('Primary storage name', inp(), { check: V.name });
    const desc = field('Description', textarea(), { check: V.description });
    const type = field('Type', sel(['NFS']));
    const url = field('URL', inp({ placeholder: '192.168.0.212:/usr/local/zstack/nfs_root' }),
                      { check: V.nfsUrl, hint: 'As for mount: host:/exported/path.' });
    const box = h('div');
    let list = checkList('Clusters', [], '');

    wizard({
        title: 'New Primary Storage', finish: 'Add',
        steps: [
            { title: 'Primary storage',
              build: () => ({ el: [zone.el, name.el, desc.el, type.el, url.el],
                              fields: [zone, name, desc, url] }) },
            { title: 'Attach cluster',
              build: () => ({
                  el: box,
                  onShow: async () => {
                      const cl = await query('/clusters', ['zoneUuid=' + zone.value]);

                      list = checkList('Clusters to attach',
                                       cl.map(c => ({ value: c.uuid, label: c.name })),
                                       'No cluster in this zone.');
                      box.replaceChildren(list.el);
                  },
              }) },
        ],
        submit: async ctx => {
            if (!ctx.ps) {
                ctx.ps = (await op('Add primary storage ' + name.value, 'POST', '/primary-storage/nfs', {
                    params: clean({ name: name.value, description: desc.value, zoneUuid: zone.value,
                                    url: url.value, type: 'NFS' }),
                })).inventory;
            }
            await attachAll(ctx, list.values(), c => op(
                'Attach primary storage ' + ctx.ps.name + ' to cluster ' + nameOf(c), 'POST',
                '/clusters/' + c + '/primary-storage/' + ctx.ps.uuid, { params: {} }));
        },
    });
}

function newBackupStorage() {
    const name = field('Backup storage name', inp(), { check: V.name });
    const desc = field('Description', textarea(), { check: V.description });
    const type = field('Type', sel(['SftpBackupStorage']));
    const url = field('URL', inp({ placeholder: '/backupStorage' }),
                      { check: V.path, hint: 'The folder on the host that stores images.' });
    const host = field('Hostname', inp({ placeholder: '192.168.0.212' }), { check: V.host });
    const port = field('SSH port', inp({ value: '22', inputmode: 'numeric' }), { check: V.port });
    const user = field('Username', inp({ value: 'root', readOnly: true }));
    const pass = field('Password', h('input', { type: 'password', autocomplete: 'new-password' }),
                       { check: V.required,
                         hint: "root's SSH password; used once for the first login, never stored." });
    const box = h('div');
    let list = checkList('Zones', [], '');

    wizard({
        title: 'New Backup Storage', finish: 'Add',
        steps: [
            { title: 'Backup storage',
              build: () => ({ el: [name.el, desc.el, type.el, url.el, host.el, port.el, user.el, pass.el],
                              fields: [name, desc, url, host, port, pass] }) },
            { title: 'Attach zone',
              build: () => ({
                  el: box,
                  onShow: async () => {
                      const z = await query('/zones');

                      list = checkList('Zones to attach', z.map(x => ({ value: x.uuid, label: x.name })),
                                       'No zone yet.');
                      box.replaceChildren(list.el);
                  },
              }) },
        ],
        submit: async (ctx, w) => {
            if (!ctx.bs) {
                ctx.bs = (await op('Add backup storage ' + name.value, 'POST', '/backup-storage/sftp', {
                    params: clean({ name: name.value, description: desc.value, url: url.value,
                                    hostname: host.value, sshPort: Number(port.value),
                                    username: 'root', password: pass.control.value,
                                    type: 'SftpBackupStorage' }),
                }, p => w.status(p, true))).inventory;
            }
            w.status('attaching\u2026', true);
            await attachAll(ctx, list.values(), z => op(
                'Attach backup storage ' + ctx.bs.name + ' to zone ' + nameOf(z), 'POST',
                '/zones/' + z + '/backup-storage/' + ctx.bs.uuid, { params: {} }));
        },
    });
}

/* --------------------------------------------------------------- images */

function newImage() {
    const bsSel = sel([]);
    const bs = field('Backup storage', bsSel, { check: V.required });
    const name = field('Image name', inp(), { check: V.name });
    const desc = field('Description', textarea(), { check: V.description });
    const media = field('Media type', sel(['RootVolumeTemplate', 'DataVolumeTemplate', 'ISO']));
    const format = field('Format', sel(['qcow2', 'raw', 'iso']), {
        check: v => ((v === 'iso') !== (media.control.value === 'ISO')
                     ? 'ISO images have format iso, and only they do.' : ''),
    });
    const platform = field('Platform', sel(['Linux', 'Windows', 'WindowsVirtio', 'Paravirtualization', 'Other']));
    const url = field('URL', inp({ placeholder: 'http://download.zstack.org/templates/ttylinux.qcow2' }),
                      { check: V.imageUrl });
    const system = checkField('System (an image for virtual routers)');

    fillSelect(bsSel, '/backup-storage', [], null, '(no backup storage: add one first)');
    wizard({
        title: 'New Image', finish: 'Add',
        steps: [{ title: 'Image',
                  build: () => ({ el: [bs.el, name.el, desc.el, format.el, media.el, platform.el,
                                       url.el, system.el],
                                  fields: [bs, name, desc, format, url] }) }],
        submit: () => op('Add image ' + name.value, 'POST', '/images', {
            params: clean({ name: name.value, description: desc.value, format: format.value,
                            mediaType: media.value, platform: platform.value, url: url.value,
                            system: system.value, backupStorageUuids: [bsSel.value] }),
        }),
    });
}

/* ------------------------------------------------------------- networks */

/* The API's type names (ZStack's: the VXLAN one has no L2 prefix). */
const L2_TYPES = ['L2NoVlanNetwork', 'L2VlanNetwork', 'VxlanNetwork'];
const L2_PATHS = { L2NoVlanNetwork: 'no-vlan', L2VlanNetwork: 'vlan', VxlanNetwork: 'vxlan' };

function newL2() {
    const zone = zoneField();
    const name = field('L2 network name', inp(), { check: V.name });
    const desc = field('Description', textarea(), { check: V.description });
    const type = field('Type', sel(L2_TYPES));
    const vlan = field('VLAN', inp({ inputmode: 'numeric' }), { check: V.intRange(1, 4094) });
    const vni = field('VNI', inp({ inputmode: 'numeric' }), { check: V.intRange(1, 16777215) });
    const nic = field('Physical interface', inp({ placeholder: 'eth0' }), { check: V.ifname });
    const box = h('div');
    let list = checkList('Clusters', [], '');
    const showType = () => {
        vlan.el.hidden = type.value !== 'L2VlanNetwork';
        vni.el.hidden = type.value !== 'VxlanNetwork';
    };

    type.control.addEventListener('change', showType);
    showType();
    wizard({
        title: 'New L2 Network', finish: 'Create',
        steps: [
            { title: 'L2 network',
              build: () => ({ el: [zone.el, name.el, desc.el, type.el, vlan.el, vni.el, nic.el],
                              fields: [zone, name, desc, vlan, vni, nic] }) },
            { title: 'Attach cluster',
              build: () => ({
                  el: box,
                  onShow: async () => {
                      const cl = await query('/clusters', ['zoneUuid=' + zone.value]);

                      list = checkList('Clusters to attach',
                                       cl.map(c => ({ value: c.uuid, label: c.name })),
                                       'No cluster in this zone.');
                      box.replaceChildren(list.el);
                  },
              }) },
        ],
        submit: async ctx => {
            if (!ctx.l2) {
                const p = { name: name.value, description: desc.value, zoneUuid: zone.value,
                            physicalInterface: nic.value };

                if (type.value === 'L2VlanNetwork') {
                    p.vlan = Number(vlan.value);
                }
                if (type.value === 'VxlanNetwork') {
                    p.vni = Number(vni.value);
                }
                ctx.l2 = (await op('Create L2 network ' + name.value, 'POST',
                                   '/l2-networks/' + L2_PATHS[type.value], { params: clean(p) })).inventory;
            }
            await attachAll(ctx, list.values(), c => op(
                'Attach L2 network ' + ctx.l2.name + ' to cluster ' + nameOf(c), 'POST',
                '/l2-networks/' + ctx.l2.uuid + '/clusters/' + c, { params: {} }));
        },
    });
}

/* The IP range form (by range or by CIDR) with its Add button; used by the
 * New L3 Network wizard and the Add IP Range action. */
function ipRangeForm(list) {
    const method = radios('Method', [{ value: 'range', label: 'Add By Range' },
                                     { value: 'cidr', label: 'Add By CIDR' }], 'range');
    const rname = field('IP range name', inp(), { check: v => (v ? V.name(v) : '') });
    const start = field('Start IP', inp({ placeholder: '192.168.0.230' }), { check: V.optIp });
    const end = field('End IP', inp({ placeholder: '192.168.0.240' }), { check: V.optIp });
    const mask = field('Netmask', inp({ placeholder: '255.255.255.0' }),
                       { check: v => (v ? V.netmask(v) : '') });
    const gw = field('Gateway', inp({ placeholder: '192.168.0.1' }), { check: V.optIp });
    const cidr = field('Network CIDR', inp({ placeholder: '10.0.0.0/24' }), { check: V.optCidr });
    const cgw = field('CIDR gateway (optional)', inp({ placeholder: 'first address' }), { check: V.optIp,
                      hint: 'Empty: the first address of the CIDR.' });
    const msg = h('div', { class: 'err', 'aria-live': 'polite' });
    const add = h('button', { type: 'button', class: 'btn', text: 'Add' });
    const byRange = [start, end, mask, gw];
    const byCidr = [cidr, cgw];
    const problem = () => {
        if (!rname.value) {
            return 'Name the IP range.';
        }
        if (method.value === 'range') {
            return checkRange(start.value, end.value, mask.value, gw.value);
        }
        if (!cidr.value) {
            return 'Fill in the network CIDR.';
        }
        return V.cidr(cidr.value) || V.optIp(cgw.value);
    };
    const update = () => {
        const isRange = method.value === 'range';

        byRange.forEach(f => {
            f.el.hidden = !isRange;
        });
        byCidr.forEach(f => {
            f.el.hidden = isRange;
        });
        const p = problem();
        const typed = rname.value || (isRange ? byRange : byCidr).some(f => f.value);

        add.disabled = !!p;
        msg.textContent = typed ? p : '';
    };
    const el = h('div', {}, method.el, rname.el, byRange.map(f => f.el), byCidr.map(f => f.el),
                 msg, h('div', { class: 'field' }, add),
                 h('div', { class: 'label', text: 'IP ranges to add' }), list.el);

    for (const f of [rname, ...byRange, ...byCidr]) {
        f.control.dataset.enterAdds = '1';
        f.control.addEventListener('keydown', ev => {
            if (ev.key === 'Enter') {
                ev.preventDefault();
                add.click();
            }
        });
    }
    el.addEventListener('input', update);
    el.addEventListener('change', update);
    add.addEventListener('click', () => {
        if (problem()) {
            return;
        }
        const r = method.value === 'range'
            ? { by: 'range', text: rname.value + ': ' + start.value + ' - ' + end.value
                    + ' / ' + mask.value + ' gw ' + gw.value,
                params: { name: rname.value, startIp: start.value, endIp: end.value,
                          netmask: mask.value, gateway: gw.value } }
            : { by: 'cidr', text: rname.value + ': ' + cidr.value + (cgw.value ? ' gw ' + cgw.value : ''),
                params: clean({ name: rname.value, networkCidr: cidr.value, gateway: cgw.value }) };

        list.add(r);
        for (const f of [rname, ...byRange, ...byCidr]) {
            f.control.value = '';
        }
        update();
        el.dispatchEvent(new Event('input', { bubbles: true }));
    });
    update();
    return { el, fields: [rname, ...byRange, ...byCidr] };
}

function addRanges(l3, ranges, done) {
    return (async () => {
        for (const r of ranges) {
            if (done.has(r)) {
                continue;
            }
            await op('Add IP range ' + r.params.name + ' to ' + l3.name, 'POST',
                     '/l3-networks/' + l3.uuid + '/ip-ranges' + (r.by === 'cidr' ? '/by-cidr' : ''),
                     { params: r.params });
            done.add(r);
        }
    })();
}

function newL3() {
    const zone = zoneField();
    const l2s = sel([]);
    const l2 = field('L2 network', l2s, { check: V.required });
    const name = field('L3 network name', inp(), { check: V.name });
    const desc = field('Description', textarea(), { check: V.description });
    const type = field('Type', sel(['L3BasicNetwork']));
    const system = checkField('System network (for virtual routers and VIPs, not user VMs)');
    const domain = field('DNS domain', inp({ placeholder: 'tutorials.zstack.org' }), { check: V.dnsName });
    const ranges = addedList('IP ranges to add', 'No IP range added yet.');
    const rangeForm = ipRangeForm(ranges);
    const dnsList = addedList('DNS servers to add', 'No DNS added yet.');
    const dns = field('DNS', inp({ placeholder: '8.8.8.8', 'data-enter-adds': '1' }), { check: V.optIp });
    const dnsAdd = h('button', { type: 'button', class: 'btn', text: 'Add', disabled: true });
    const provSel = sel([]);
    const prov = field('Provider', provSel);
    const svcSel = sel([]);
    const svc = field('Service', svcSel);
    const svcAdd = h('button', { type: 'button', class: 'btn', text: 'Add' });
    const svcList = addedList('Network services to add', 'No network service added yet.');
    let providers = [];

    zone.control.addEventListener('change', () => {
        if (zone.value) {
            fillSelect(l2s, '/l2-networks', ['zoneUuid=' + zone.value],
                       n => n.name + ' (' + n.type + ')', '(no L2 network in this zone)');
        }
    });
    dns.control.addEventListener('input', () => {
        dnsAdd.disabled = !dns.value || !!V.ip(dns.value);
    });
    dns.control.addEventListener('keydown', ev => {
        if (ev.key === 'Enter') {
            ev.preventDefault();
            dnsAdd.click();
        }
    });
    dnsAdd.addEventListener('click', () => {
        if (dnsList.items.some(x => x.value === dns.value)) {
            dns.note('');
            return;
        }
        dnsList.add({ value: dns.value, text: dns.value });
        dns.control.value = '';
        dnsAdd.disabled = true;
    });
    const showServices = () => {
        const p = providers.find(x => x.uuid === provSel.value);

        setOptions(svcSel, p ? p.networkServiceTypes || [] : []);
    };

    provSel.addEventListener('change', showServices);
    svcAdd.addEventListener('click', () => {
        const p = providers.find(x => x.uuid === provSel.value);

        if (!p || !svcSel.value
            || svcList.items.some(x => x.provider === p.uuid && x.service === svcSel.value)) {
            return;
        }
        svcList.add({ provider: p.uuid, service: svcSel.value, text: p.name + ': ' + svcSel.value });
    });
    query('/network-services/providers').then(ps => {
        providers = ps;
        setOptions(provSel, ps.map(p => [p.uuid, p.name]), '(no provider)');
        showServices();
    }).catch(() => {});

    wizard({
        title: 'New L3 Network', finish: 'Create',
        steps: [
            { title: 'L3 network',
              build: () => ({ el: [zone.el, l2.el, name.el, desc.el, type.el, system.el, domain.el],
                              fields: [zone, l2, name, desc, domain] }) },
            { title: 'IP range', build: () => ({ el: rangeForm.el, fields: rangeForm.fields }) },
            { title: 'DNS',
              build: () => ({ el: [dns.el, h('div', { class: 'field' }, dnsAdd),
                                   h('div', { class: 'label', text: 'DNS servers to add' }), dnsList.el],
                              fields: [dns] }) },
            { title: 'Network services',
              build: () => ({ el: [prov.el, svc.el, h('div', { class: 'field' }, svcAdd),
                                   h('div', { class: 'label', text: 'Network services to add' }),
                                   svcList.el] }) },
        ],
        submit: async ctx => {
            ctx.done = ctx.done || new Set();
            if (!ctx.l3) {
                ctx.l3 = (await op('Create L3 network ' + name.value, 'POST', '/l3-networks', {
                    params: clean({ name: name.value, description: desc.value, l2NetworkUuid: l2s.value,
                                    type: type.value, system: system.value, dnsDomain: domain.value }),
                })).inventory;
            }
            await addRanges(ctx.l3, ranges.items, ctx.done);
            for (const d of dnsList.items) {
                if (!ctx.done.has(d)) {
                    await op('Add DNS ' + d.value + ' to ' + ctx.l3.name, 'POST',
                             '/l3-networks/' + ctx.l3.uuid + '/dns', { params: { dns: d.value } });
                    ctx.done.add(d);
                }
            }
            const todo = svcList.items.filter(s => !ctx.done.has(s));

            if (todo.length) {
                const byProv = {};

                for (const s of todo) {
                    (byProv[s.provider] = byProv[s.provider] || []).push(s.service);
                }
                await op('Attach network services ' + todo.map(s => s.service).join(', ')
                         + ' to ' + ctx.l3.name, 'POST',
                         '/l3-networks/' + ctx.l3.uuid + '/network-services',
                         { params: { networkServices: byProv } });
                todo.forEach(s => ctx.done.add(s));
            }
        },
    });
}

function addIpRangeAction() {
    return {
        label: 'Add IP Range',
        run: inv => {
            const ranges = addedList('IP ranges to add', 'No IP range added yet.');
            const form = ipRangeForm(ranges);

            wizard({
                title: 'Add IP range to ' + inv.name, finish: 'Create',
                steps: [{ title: 'IP range',
                          build: () => ({ el: form.el, fields: form.fields,
                                          valid: () => ranges.items.length > 0 }) }],
                submit: ctx => {
                    ctx.done = ctx.done || new Set();
                    return addRanges(inv, ranges.items, ctx.done);
                },
            });
        },
    };
}

function addDnsAction() {
    return {
        label: 'Add DNS',
        run: inv => {
            const dns = field('DNS', inp({ placeholder: '8.8.8.8' }), { check: V.ip });

            wizard({
                title: 'Add DNS to ' + inv.name, finish: 'Add',
                steps: [{ title: 'DNS', build: () => ({ el: dns.el, fields: [dns] }) }],
                submit: () => op('Add DNS ' + dns.value + ' to ' + inv.name, 'POST',
                                 '/l3-networks/' + inv.uuid + '/dns', { params: { dns: dns.value } }),
            });
        },
    };
}

/* ------------------------------------------------------------ offerings */

function offeringFields() {
    return {
        name: field('Name', inp(), { check: V.name }),
        desc: field('Description', textarea(), { check: V.description }),
        cpu: field('CPU number', inp({ value: '1', inputmode: 'numeric' }), { check: V.intRange(1, 1024) }),
        speed: field('CPU speed (MHz)', inp({ value: '512', inputmode: 'numeric' }),
                     { check: V.intRange(0, 1000000) }),
        mem: field('Memory', inp({ placeholder: '512M' }),
                   { check: V.memory, hint: 'e.g. 512M or 1G (a bare number is in MiB).' }),
    };
}

function newInstanceOffering() {
    const f = offeringFields();
    const alloc = field('Allocator strategy', sel(['DefaultHostAllocatorStrategy',
                                                   'LeastVmPreferredHostAllocatorStrategy']));

    wizard({
        title: 'New Instance Offering', finish: 'Create',
        steps: [{ title: 'Offering',
                  build: () => ({ el: [f.name.el, f.desc.el, f.cpu.el, f.speed.el, f.mem.el, alloc.el],
                                  fields: [f.name, f.desc, f.cpu, f.speed, f.mem] }) }],
        submit: () => op('Create instance offering ' + f.name.value, 'POST', '/instance-offerings', {
            params: clean({ name: f.name.value, description: f.desc.value, cpuNum: Number(f.cpu.value),
                            cpuSpeed: Number(f.speed.value), memorySize: parseSize(f.mem.value),
                            allocatorStrategy: alloc.value }),
        }),
    });
}

function newVrOffering() {
    const zone = zoneField();
    const f = offeringFields();
    const imgSel = sel([]);
    const img = field('Image', imgSel, { check: V.required });
    const mgmtSel = sel([]);
    const mgmt = field('Management L3 network', mgmtSel, { check: V.required });
    const pubSel = sel([]);
    const pub = field('Public L3 network', pubSel);
    const dflt = checkField('Default offering');

    fillSelect(imgSel, '/images', [], i => i.name + (i.system ? ' (system)' : ''), '(no image)');
    zone.control.addEventListener('change', async () => {
        if (zone.value) {
            const l3 = await fillSelect(mgmtSel, '/l3-networks', ['zoneUuid=' + zone.value], null,
                                        '(no L3 network in this zone)');

            setOptions(pubSel, [['', '(same as management)']].concat(l3.map(n => [n.uuid, n.name])));
        }
    });
    wizard({
        title: 'New Virtual Router Offering', finish: 'Create',
        steps: [{ title: 'Offering',
                  build: () => ({ el: [zone.el, f.name.el, f.desc.el, f.cpu.el, f.speed.el, f.mem.el,
                                       img.el, mgmt.el, pub.el, dflt.el],
                                  fields: [zone, f.name, f.desc, f.cpu, f.speed, f.mem, img, mgmt] }) }],
        submit: () => op('Create virtual router offering ' + f.name.value, 'POST',
                         '/instance-offerings/virtual-routers', {
                             params: clean({ name: f.name.value, description: f.desc.value,
                                             zoneUuid: zone.value, cpuNum: Number(f.cpu.value),
                                             cpuSpeed: Number(f.speed.value),
                                             memorySize: parseSize(f.mem.value), imageUuid: imgSel.value,
                                             managementNetworkUuid: mgmtSel.value,
                                             publicNetworkUuid: pubSel.value || mgmtSel.value,
                                             isDefault: dflt.value }),
                         }),
    });
}

/* ------------------------------------------------------------ instances */

function newVm() {
    const offSel = sel([]);
    const off = field('Instance offering', offSel, { check: V.required });
    const imgSel = sel([]);
    const img = field('Image', imgSel, { check: V.required });
    const l3Sel = sel([]);
    const l3 = field('L3 network', l3Sel, { check: V.required });
    const name = field('VM name', inp(), { check: V.name });
    const desc = field('Description', textarea(), { check: V.description });
    const host = field('Host name', inp({ placeholder: 'vm1' }), { check: V.dnsName });
    const strategy = radios('Strategy', [
        { value: 'InstantStart', label: 'InstantStart: create and start the VM' },
        { value: 'JustCreate', label: 'JustCreate: create the VM stopped' },
    ], 'InstantStart');
    const summary = h('dl', { class: 'summary' });

    fillSelect(offSel, '/instance-offerings', ['state=Enabled'], o => o.name, '(no instance offering)');
    fillSelect(imgSel, '/images', ['system=false', 'state=Enabled'], null, '(no image)');
    fillSelect(l3Sel, '/l3-networks', ['system=false'], null, '(no private L3 network)');
    wizard({
        title: 'New VmInstance', finish: 'Create',
        steps: [
            { title: 'Instance',
              build: () => ({ el: [off.el, img.el, l3.el, name.el, desc.el, host.el],
                              fields: [off, img, l3, name, desc, host] }) },
            { title: 'Strategy',
              build: () => ({
                  el: [strategy.el,
                       h('p', { class: 'note',
                                text: 'InstantStart places the VM on a Connected host (its cluster needs '
                                    + 'primary storage and the L2 network) and starts it; the first VM '
                                    + 'waits for the image to be copied. JustCreate only records it, '
                                    + 'Stopped.' }),
                       summary],
                  onShow: () => {
                      summary.replaceChildren();
                      for (const [k, v] of [['Offering', nameOf(offSel.value)], ['Image', nameOf(imgSel.value)],
                                            ['L3 network', nameOf(l3Sel.value)], ['Name', name.value],
                                            ['Host name', host.value]]) {
                          append(summary, [h('dt', { text: k }), h('dd', { text: v || '\u2014' })]);
                      }
                  },
              }) },
        ],
        submit: (ctx, w) => op('Create VM ' + name.value, 'POST', '/vm-instances', {
            params: clean({ name: name.value, description: desc.value,
                            instanceOfferingUuid: offSel.value, imageUuid: imgSel.value,
                            l3NetworkUuids: [l3Sel.value], hostname: host.value,
                            strategy: strategy.value }),
        }, p => w.status(p, true)),
    });
}

function vmAction(label, verb, noun = 'VM') {
    return {
        label,
        run: inv => op(label + ' ' + noun + ' ' + inv.name, 'PUT', '/vm-instances/' + inv.uuid + '/actions',
                       { [verb]: {} }).then(refreshView, refreshView),
    };
}

function vmIps(inv) {
    return (inv.vmNics || []).map(n => n.ip).filter(Boolean).join(', ');
}

function vmL3s(inv) {
    return (inv.vmNics || []).map(n => nameOf(n.l3NetworkUuid)).join(', ');
}

/* -------------------------------------------------------- VIPs and rules */

function newVip() {
    const l3s = sel([]);
    const l3 = field('L3 network', l3s, { check: V.required });
    const name = field('VIP name', inp(), { check: V.name });
    const desc = field('Description', textarea(), { check: V.description });
    const ip = field('Required IP (optional)', inp(), { check: V.optIp,
                     hint: 'Empty: the next free address of the L3 network.' });

    fillSelect(l3s, '/l3-networks', [], n => n.name + (n.system ? ' (system)' : ''), '(no L3 network)');
    wizard({
        title: 'New VIP', finish: 'Create',
        steps: [{ title: 'VIP', build: () => ({ el: [l3.el, name.el, desc.el, ip.el],
                                                fields: [l3, name, desc, ip] }) }],
        submit: () => op('Create VIP ' + name.value, 'POST', '/vips', {
            params: clean({ name: name.value, description: desc.value, l3NetworkUuid: l3s.value,
                            requiredIp: ip.value }),
        }),
    });
}

/* NICs a rule on 'vip' may go to, as the API's candidate-nics computes
 * them (the API checks again at create). */
async function candidateNics(vip) {
    const [vms, l3s, rules] = await Promise.all([
        query('/vm-instances', ['type=UserVm', 'state!=Destroyed']),
        query('/l3-networks'),
        query('/port-forwarding'),
    ]);
    const pfL3 = new Set(l3s.filter(n => (n.networkServices || [])
        .some(s => s.networkServiceType === 'PortForwarding')).map(n => n.uuid));
    const out = [];

    for (const vm of vms) {
        const nicUuids = new Set((vm.vmNics || []).map(n => n.uuid));
        const otherVip = rules.some(r => r.vmNicUuid && nicUuids.has(r.vmNicUuid) && r.vipUuid !== vip.uuid);

        for (const n of vm.vmNics || []) {
            if (n.ip && n.l3NetworkUuid !== vip.l3NetworkUuid && pfL3.has(n.l3NetworkUuid) && !otherVip) {
                out.push({ nic: n, vm });
            }
        }
    }
    return out;
}

function nicLabel(vm, n) {
    return vm.name + ' \u2014 ' + n.ip + ' (' + nameOf(n.l3NetworkUuid) + ')';
}

function newPfRule() {
    const ctxVip = { vip: null };
    const how = radios('VIP method', [{ value: 'new', label: 'Create New VIP' },
                                     { value: 'old', label: 'Use Existing VIP' }], 'new');
    const l3s = sel([]);
    const l3 = field('L3 network', l3s, { check: V.required });
    const vipName = field('VIP name', inp(), { check: V.name });
    const reqIp = field('Required IP (optional)', inp(), { check: V.optIp });
    const createVip = h('button', { type: 'button', class: 'btn', text: 'Create VIP' });
    const created = h('div', { class: 'created', 'aria-live': 'polite' });
    const vipSel = sel([]);
    const vipOld = field('VIP', vipSel, { check: V.required });
    const newBox = h('div', {}, l3.el, vipName.el, reqIp.el, h('div', { class: 'field' }, createVip), created);
    const oldBox = h('div', {}, vipOld.el);
    let vips = [];

    const name = field('Rule name', inp(), { check: V.name });
    const desc = field('Description', textarea(), { check: V.description });
    const proto = field('Protocol', sel(['TCP', 'UDP']));
    const vs = field('VIP start port', inp({ inputmode: 'numeric' }), { check: V.port });
    const ve = field('VIP end port', inp({ inputmode: 'numeric' }), {
        check: v => V.optPort(v) || (v && Number(v) < Number(vs.control.value)
                                     ? 'The end port must not be below the start port.' : ''),
        hint: 'Empty: the start port.',
    });
    const gs = field('Guest start port', inp({ inputmode: 'numeric' }), { check: V.optPort,
                     hint: 'Empty: the VIP ports.' });
    const ge = field('Guest end port', inp({ inputmode: 'numeric' }), {
        check: v => {
            const e = V.optPort(v);

            if (e) {
                return e;
            }
            const vlen = Number(ve.control.value || vs.control.value) - Number(vs.control.value);
            const gStart = gs.control.value;
            const gEnd = v || (gStart ? String(Number(gStart) + vlen) : '');

            if (gStart && gEnd && Number(gEnd) < Number(gStart)) {
                return 'The end port must not be below the start port.';
            }
            if (gStart && gEnd && Number(gEnd) - Number(gStart) !== vlen) {
                return 'The guest range must be as long as the VIP range ('
                    + (vlen + 1) + (vlen ? ' ports' : ' port') + ').';
            }
            return '';
        },
    });
    const cidr = field('Allowed CIDR', inp({ placeholder: '0.0.0.0/0' }), { check: V.optCidr,
                       hint: 'Sources allowed to reach the rule; empty: everyone.' });
    const nics = radios('VM NIC', [], '');
    const nicNote = h('p', { class: 'hint' });
    let availTimer = null;

    /* Asks the API whether the VIP ports are free, as the user types. */
    const checkAvail = () => {
        clearTimeout(availTimer);
        vs.note('');
        if (!ctxVip.vip || V.port(vs.control.value) || V.optPort(ve.control.value)) {
            return;
        }
        availTimer = setTimeout(async () => {
            const p = new URLSearchParams({ protocolType: proto.value, start: vs.control.value,
                                            end: ve.control.value || vs.control.value });

            try {
                const d = await api('GET', '/vips/' + ctxVip.vip.uuid + '/check-port-availability?' + p);

                vs.note(d.available ? 'Free on VIP ' + ctxVip.vip.ip + '.'
                        : 'In use on VIP ' + ctxVip.vip.ip + ' by rule '
                        + (d.conflicts || []).map(c => c.name).join(', ') + '.');
            } catch (e) {
                vs.note('');
            }
        }, 300);
    };

    const showHow = () => {
        newBox.hidden = how.value !== 'new';
        oldBox.hidden = how.value !== 'old';
        ctxVip.vip = how.value === 'old' ? vips.find(v => v.uuid === vipSel.value) || null
            : ctxVip.created || null;
    };

    how.el.addEventListener('change', showHow);
    vipSel.addEventListener('change', showHow);
    fillSelect(l3s, '/l3-networks', [], n => n.name + (n.system ? ' (system)' : ''), '(no L3 network)');
    query('/vips').then(v => {
        vips = v;
        setOptions(vipSel, v.map(x => [x.uuid, x.name + ' (' + x.ip + ')']), '(no VIP yet)');
        showHow();
    }).catch(() => {});
    vipName.control.value = 'VIP-' + Math.random().toString(16).slice(2, 6).toUpperCase();
    [proto.control, vs.control, ve.control].forEach(c => c.addEventListener('input', checkAvail));
    proto.control.addEventListener('change', checkAvail);

    const w = wizard({
        title: 'New Port Forwarding Rule', finish: 'Create',
        steps: [
            { title: 'VIP',
              build: () => ({ el: [how.el, newBox, oldBox], fields: [],
                              valid: () => !!ctxVip.vip }) },
            { title: 'Rule',
              build: () => ({ el: [name.el, desc.el, proto.el,
                                   h('div', { class: 'row2' }, vs.el, ve.el),
                                   h('div', { class: 'row2' }, gs.el, ge.el), cidr.el],
                              fields: [name, desc, vs, ve, gs, ge, cidr],
                              onShow: checkAvail }) },
            { title: 'VM NIC',
              build: () => ({
                  el: [nics.el, nicNote],
                  onShow: async () => {
                      const c = await candidateNics(ctxVip.vip);

                      nics.set([{ value: '', label: 'Leave detached (attach it later)' }]
                               .concat(c.map(x => ({ value: x.nic.uuid, label: nicLabel(x.vm, x.nic) }))),
                               nics.value);
                      nicNote.textContent = c.length ? ''
                          : 'No VM NIC can take this rule yet (a VM on a private L3 network with the '
                          + 'PortForwarding service); leave it detached and attach it later.';
                  },
              }) },
        ],
        submit: () => op('Create port forwarding rule ' + name.value, 'POST', '/port-forwarding', {
            params: clean({
                name: name.value, description: desc.value, vipUuid: ctxVip.vip.uuid,
                protocolType: proto.value, vipPortStart: Number(vs.value),
                vipPortEnd: ve.value ? Number(ve.value) : null,
                privatePortStart: gs.value ? Number(gs.value) : null,
                privatePortEnd: ge.value ? Number(ge.value) : null,
                allowedCidr: cidr.value, vmNicUuid: nics.value,
            }),
        }),
    });

    createVip.addEventListener('click', async () => {
        if (l3.show(true) || vipName.show(true) || reqIp.show(true)) {
            return;
        }
        createVip.disabled = true;
        w.error('');
        try {
            const d = await op('Create VIP ' + vipName.value, 'POST', '/vips', {
                params: clean({ name: vipName.value, l3NetworkUuid: l3s.value, requiredIp: reqIp.value }),
            });

            ctxVip.created = d.inventory;
            created.textContent = 'VIP ' + d.inventory.name + ' created: ' + d.inventory.ip;
            showHow();
            w.refresh();
        } catch (e) {
            w.error(e.message);
        } finally {
            createVip.disabled = false;
        }
    });
}

function pfAttach() {
    return {
        label: 'Attach',
        when: r => !r.vmNicUuid && r.state === 'Enabled',
        run: async inv => {
            const nics = radios('VM NIC', [], '');
            const note = h('p', { class: 'hint', text: 'Loading candidate NICs\u2026' });

            wizard({
                title: 'Attach ' + inv.name, finish: 'Attach',
                steps: [{
                    title: 'VM NIC',
                    build: () => ({ el: [nics.el, note], valid: () => !!nics.value }),
                }],
                submit: () => op('Attach rule ' + inv.name + ' to ' + nameOf(nics.value), 'POST',
                                 '/port-forwarding/' + inv.uuid + '/vm-instances/nics/' + nics.value,
                                 { params: {} }),
            });
            try {
                const [d, vms] = await Promise.all([
                    api('GET', '/port-forwarding/' + inv.uuid + '/vm-instances/candidate-nics'),
                    query('/vm-instances', ['type=UserVm']),
                ]);
                const byUuid = new Map(vms.map(v => [v.uuid, v]));
                const list = (d.inventories || []).map(n => {
                    const vm = byUuid.get(n.vmInstanceUuid) || { name: n.vmInstanceUuid };

                    names.set(n.uuid, vm.name);
                    return { value: n.uuid, label: nicLabel(vm, n) };
                });

                nics.set(list, list.length ? list[0].value : '');
                note.textContent = list.length ? '' : 'No VM NIC can take this rule.';
                nics.el.dispatchEvent(new Event('change', { bubbles: true }));
            } catch (e) {
                note.textContent = 'Cannot list candidate NICs: ' + e.message;
            }
        },
    };
}

const pfDetach = {
    label: 'Detach',
    when: r => !!r.vmNicUuid,
    run: inv => confirmDialog('Detach ' + inv.name,
                              'Detach rule \u201c' + inv.name + '\u201d from ' + (inv.guestIp || 'its VM')
                              + '? Its VIP ports stop forwarding until it is attached again.',
                              'Detach',
                              () => op('Detach rule ' + inv.name, 'DELETE',
                                       '/port-forwarding/' + inv.uuid + '/vm-instances/nics')),
};

function ports(a, b) {
    return a === b || b === null || b === undefined ? String(a) : a + '-' + b;
}

/* ---------------------------------------------------------------- pages */

const GROUPS = ['Resource Pool', 'Network', 'Configuration', 'Cloud'];

const PAGES = [
    { id: 'zone', group: 'Resource Pool', title: 'Zone', noun: 'zone', path: '/zones',
      newLabel: 'New Zone', create: newZone,
      columns: [C.name, C.desc, C.state, C.created],
      actions: [...stateActions('Zone'), deleteAction] },
    { id: 'cluster', group: 'Resource Pool', title: 'Cluster', noun: 'cluster', path: '/clusters',
      refs: ['/zones'], newLabel: 'New Cluster', create: newCluster,
      columns: [C.name, C.zone, C.key('Hypervisor', 'hypervisorType'), C.state, C.created],
      actions: [
          attachAction('Attach Primary Storage', '/primary-storage', 'primary storage',
                       i => ['zoneUuid=' + i.zoneUuid],
                       (i, ps) => '/clusters/' + i.uuid + '/primary-storage/' + ps),
          attachAction('Attach L2 Network', '/l2-networks', 'L2 network',
                       i => ['zoneUuid=' + i.zoneUuid],
                       (i, l2) => '/l2-networks/' + l2 + '/clusters/' + i.uuid),
          ...stateActions('Cluster'), deleteAction] },
    { id: 'host', group: 'Resource Pool', title: 'Host', noun: 'host', path: '/hosts',
      refs: ['/clusters'], newLabel: 'New Host', create: newHost, detailsExtra: jobLog,
      columns: [C.name, C.key('Management IP', 'managementIp'), C.ref('Cluster', 'clusterUuid'),
                C.state, C.status, C.key('CPUs', 'cpuNum'),
                { label: 'Memory', get: i => formatSize(i.totalMemoryCapacity) }, C.created],
      actions: [
          { label: 'Reconnect',
            run: inv => op('Reconnect host ' + inv.name, 'PUT', '/hosts/' + inv.uuid + '/actions',
                           { reconnectHost: {} }).then(refreshView, refreshView) },
          { label: 'Enable', when: i => i.state !== 'Enabled', run: hostState('enable', 'Enable') },
          { label: 'Disable', when: i => i.state === 'Enabled', run: hostState('disable', 'Disable') },
          { label: 'Maintain', when: i => i.state !== 'Maintenance', run: hostState('maintain', 'Maintain') },
          deleteAction] },
    { id: 'primary-storage', group: 'Resource Pool', title: 'Primary Storage', noun: 'primary storage',
      path: '/primary-storage', refs: ['/zones', '/clusters'], newLabel: 'New Primary Storage',
      create: newPrimaryStorage,
      columns: [C.name, C.zone, C.key('Type', 'type'), C.key('URL', 'url'), C.state, C.status,
                { label: 'Clusters', get: i => (i.attachedClusterUuids || []).map(nameOf).join(', ') },
                C.created],
      actions: [
          attachAction('Attach Cluster', '/clusters', 'cluster', i => ['zoneUuid=' + i.zoneUuid],
                       (i, c) => '/clusters/' + c + '/primary-storage/' + i.uuid),
          attachAction('Detach Cluster', '/clusters', 'cluster', i => ['zoneUuid=' + i.zoneUuid],
                       (i, c) => '/clusters/' + c + '/primary-storage/' + i.uuid, true),
          ...stateActions('PrimaryStorage'), deleteAction] },
    { id: 'backup-storage', group: 'Resource Pool', title: 'Backup Storage', noun: 'backup storage',
      path: '/backup-storage', refs: ['/zones'], newLabel: 'New Backup Storage',
      create: newBackupStorage, detailsExtra: jobLog,
      columns: [C.name, C.key('Hostname', 'hostname'), C.key('URL', 'url'), C.state, C.status,
                { label: 'Zones', get: i => (i.attachedZoneUuids || []).map(nameOf).join(', ') },
                C.created],
      actions: [
          attachAction('Attach Zone', '/zones', 'zone', () => [],
                       (i, z) => '/zones/' + z + '/backup-storage/' + i.uuid),
          attachAction('Detach Zone', '/zones', 'zone', () => [],
                       (i, z) => '/zones/' + z + '/backup-storage/' + i.uuid, true),
          ...stateActions('BackupStorage'), deleteAction] },
    { id: 'image', group: 'Resource Pool', title: 'Image', noun: 'image', path: '/images',
      newLabel: 'New Image', create: newImage,
      columns: [C.name, C.key('Format', 'format'), C.key('Media type', 'mediaType'),
                C.key('Platform', 'platform'), { label: 'System', get: i => yesNo(i.system) },
                C.state, C.status, C.created],
      actions: [...stateActions('Image'), deleteAction] },
    { id: 'l2-network', group: 'Network', title: 'L2 Network', noun: 'L2 network', path: '/l2-networks',
      refs: ['/zones', '/clusters'], newLabel: 'New L2 Network', create: newL2,
      columns: [C.name, C.zone, C.key('Type', 'type'), C.key('Physical interface', 'physicalInterface'),
                { label: 'VLAN / VNI', get: i => String(i.vlan || i.vni || '') },
                { label: 'Clusters', get: i => (i.attachedClusterUuids || []).map(nameOf).join(', ') },
                C.created],
      actions: [
          attachAction('Attach Cluster', '/clusters', 'cluster', i => ['zoneUuid=' + i.zoneUuid],
                       (i, c) => '/l2-networks/' + i.uuid + '/clusters/' + c),
          attachAction('Detach Cluster', '/clusters', 'cluster', i => ['zoneUuid=' + i.zoneUuid],
                       (i, c) => '/l2-networks/' + i.uuid + '/clusters/' + c, true),
          deleteAction] },
    { id: 'l3-network', group: 'Network', title: 'L3 Network', noun: 'L3 network', path: '/l3-networks',
      refs: ['/l2-networks'], newLabel: 'New L3 Network', create: newL3,
      columns: [C.name, C.ref('L2 network', 'l2NetworkUuid'), C.key('Category', 'category'),
                { label: 'System', get: i => yesNo(i.system) }, C.key('DNS domain', 'dnsDomain'),
                { label: 'IP ranges', get: i => (i.ipRanges || []).map(r => r.startIp + '-' + r.endIp).join(', ') },
                { label: 'Services', get: i => [...new Set((i.networkServices || [])
                    .map(s => s.networkServiceType))].join(', ') },
                C.state, C.created],
      actions: [addIpRangeAction(), addDnsAction(), ...stateActions('L3Network'), deleteAction] },
    { id: 'vip', group: 'Network', title: 'VIP', noun: 'VIP', path: '/vips', refs: ['/l3-networks'],
      newLabel: 'New VIP', create: newVip,
      columns: [C.name, C.key('IP', 'ip'), C.ref('L3 network', 'l3NetworkUuid'), C.key('Use', 'useFor'),
                C.state, C.created],
      actions: [...stateActions('Vip'), deleteAction] },
    { id: 'port-forwarding', group: 'Network', title: 'Port Forwarding', noun: 'port forwarding rule',
      path: '/port-forwarding', refs: ['/vips', '/vm-instances/nics', '/vm-instances'],
      newLabel: 'New Port Forwarding Rule', create: newPfRule,
      columns: [C.name, C.key('VIP IP', 'vipIp'), C.key('Protocol', 'protocolType'),
                { label: 'VIP ports', get: i => ports(i.vipPortStart, i.vipPortEnd) },
                { label: 'Guest ports', get: i => ports(i.privatePortStart, i.privatePortEnd) },
                { label: 'VM', get: i => (i.vmNicUuid ? nameOf(vmOfNic.get(i.vmNicUuid)) : 'detached') },
                C.key('Guest IP', 'guestIp'), C.key('Allowed CIDR', 'allowedCidr'), C.state, C.created],
      actions: [pfAttach(), pfDetach, ...stateActions('PortForwardingRule'), deleteAction] },
    { id: 'instance-offering', group: 'Configuration', title: 'Instance Offering', noun: 'instance offering',
      path: '/instance-offerings', newLabel: 'New Instance Offering', create: newInstanceOffering,
      columns: [C.name, C.key('CPUs', 'cpuNum'), C.key('CPU speed', 'cpuSpeed'),
                { label: 'Memory', get: i => formatSize(i.memorySize) }, C.state, C.created],
      actions: [...stateActions('InstanceOffering'), deleteAction] },
    { id: 'virtual-router-offering', group: 'Configuration', title: 'Virtual Router Offering',
      noun: 'virtual router offering', path: '/instance-offerings/virtual-routers',
      refs: ['/zones', '/images', '/l3-networks'], newLabel: 'New Virtual Router Offering',
      create: newVrOffering,
      columns: [C.name, C.zone, C.key('CPUs', 'cpuNum'), { label: 'Memory', get: i => formatSize(i.memorySize) },
                C.ref('Image', 'imageUuid'), C.ref('Management L3', 'managementNetworkUuid'),
                C.ref('Public L3', 'publicNetworkUuid'), { label: 'Default', get: i => yesNo(i.isDefault) },
                C.state],
      actions: [...stateActions('VirtualRouterOffering'), deleteAction] },
    { id: 'instance', group: 'Cloud', title: 'Instance', noun: 'VM instance', path: '/vm-instances',
      base: '/vm-instances', conds: ['type=UserVm'], refs: ['/l3-networks', '/hosts'],
      newLabel: 'New VmInstance', create: newVm,
      columns: [C.name, C.state, C.key('Host name', 'hostname'), { label: 'IP', get: vmIps },
                { label: 'L3 network', get: vmL3s }, C.ref('Host', 'hostUuid'), C.created],
      actions: [vmAction('Start', 'startVmInstance'), vmAction('Stop', 'stopVmInstance'),
                vmAction('Reboot', 'rebootVmInstance'),
                { label: 'Destroy', when: i => i.state !== 'Destroyed',
                  run: inv => confirmDialog('Destroy ' + inv.name,
                                            'Destroy VM \u201c' + inv.name + '\u201d? Its port forwarding rules are detached.',
                                            'Destroy', () => op('Destroy VM ' + inv.name, 'DELETE',
                                                                '/vm-instances/' + inv.uuid), true) },
                { ...vmAction('Recover', 'recoverVmInstance'), when: i => i.state === 'Destroyed' },
                { ...vmAction('Expunge', 'expungeVmInstance'), when: i => i.state === 'Destroyed' }] },
    { id: 'virtual-router', group: 'Cloud', title: 'Virtual Router', noun: 'virtual router',
      path: '/vm-instances', base: '/vm-instances', conds: ['type=ApplianceVm'],
      refs: ['/l3-networks', '/hosts'],
      columns: [C.name, C.state, { label: 'IP', get: vmIps }, { label: 'L3 networks', get: vmL3s },
                C.ref('Host', 'hostUuid'), C.created],
      actions: [vmAction('Start', 'startVmInstance', 'virtual router'),
                vmAction('Stop', 'stopVmInstance', 'virtual router'),
                vmAction('Reboot', 'rebootVmInstance', 'virtual router'),
                { label: 'Destroy', when: i => i.state !== 'Destroyed',
                  run: inv => confirmDialog('Destroy ' + inv.name,
                                            'Destroy virtual router \u201c' + inv.name + '\u201d? Port forwarding, '
                                            + 'DHCP and SNAT of its networks stop until the next VM start on them '
                                            + 'creates a new one.',
                                            'Destroy', () => op('Destroy virtual router ' + inv.name, 'DELETE',
                                                                '/vm-instances/' + inv.uuid), true) }] },
];


/* ------------------------------------------------------------- start-up */

setInterval(() => {
    if (!document.hidden && current && Session.get()) {
        current.refresh().catch(() => {});
    }
}, POLL_MS);

window.addEventListener('hashchange', route);
/* A click elsewhere closes an open Action menu. */
document.addEventListener('click', () => {
    for (const m of document.querySelectorAll('.menu:not([hidden])')) {
        m.hidden = true;
        m.previousElementSibling.setAttribute('aria-expanded', 'false');
    }
});
/* A logout (or login) in another tab of this browser. */
window.addEventListener('storage', ev => {
    if (ev.key === STORE_KEY && !Session.get() && shell) {
        sessionEnded('You logged out in another window.');
    }
});
route();

}());
