// Building DOM without markup strings. Every text from the API (paths, titles, messages, file
// content) goes in as a text node, so it is shown as it is and never parsed as HTML; the one
// place that needs markup from the server, the <mark> tags of a memory snippet, is handled by
// markedText below without innerHTML.

// h('a.badge', {href: '/x', onclick: fn}, 'text', child, [more, children])
// The tag may carry .classes and a #id. Attributes: `class`, `on<event>` (a listener),
// `dataset`, booleans (set when true, left out when false), anything else as an attribute.
export function h(spec, attrs, ...children) {
  const m = /^([a-z0-9-]+)((?:[.#][\w-]+)*)$/i.exec(spec);
  if (!m) throw new Error(`bad element spec ${spec}`);
  const el = document.createElement(m[1]);
  for (const part of m[2].match(/[.#][\w-]+/g) || []) {
    if (part[0] === '.') el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') String(v).split(/\s+/).filter(Boolean).forEach((c) => el.classList.add(c));
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' && 'value' in el) el.value = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// Replaces the children of `el`.
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// A memory snippet: the API marks matches with <mark>...</mark> and escapes nothing else.
// Everything between the tags becomes text; only the tags become <mark> elements (an
// unbalanced tag from a hostile file only opens or closes a mark, it never injects markup).
export function markedText(snippet) {
  const frag = document.createDocumentFragment();
  let target = frag;
  for (const part of String(snippet ?? '').split(/(<mark>|<\/mark>)/)) {
    if (part === '<mark>') {
      if (target === frag) {
        target = document.createElement('mark');
        frag.append(target);
      }
    } else if (part === '</mark>') {
      target = frag;
    } else if (part) {
      target.append(document.createTextNode(part));
    }
  }
  return frag;
}

// A live region message: role=status for news, role=alert for errors.
export function notice(kind, ...children) {
  return h(`div.notice.notice-${kind}`, { role: kind === 'error' ? 'alert' : 'status' }, ...children);
}

// A link handled by the page's router (app.js intercepts clicks on a[data-route]).
export function link(href, ...children) {
  return h('a', { href, dataset: { route: '' } }, ...children);
}
