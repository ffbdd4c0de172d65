// Message HTML comes from the server's own sanitizing Markdown renderer; it is cleaned
// again here (allow-list of tags and attributes) so a bug there cannot become script here.

const TAGS = new Set(["P", "BR", "STRONG", "B", "EM", "I", "U", "S", "DEL", "CODE", "PRE", "BLOCKQUOTE", "UL", "OL",
  "LI", "A", "SPAN", "H1", "H2", "H3", "H4", "H5", "H6", "HR", "SUB", "SUP", "DETAILS", "SUMMARY", "TABLE", "THEAD",
  "TBODY", "TR", "TH", "TD"]);
const ATTRS = { A: ["href", "title"], SPAN: ["data-mx-spoiler", "data-mx-color"], CODE: ["class"], OL: ["start"] };
const SAFE_URL = /^(https?:|mailto:)/i;

export function sanitizedFragment(html) {
  const doc = new DOMParser().parseFromString(`<body>${html || ""}</body>`, "text/html");
  const out = document.createDocumentFragment();
  for (const node of [...doc.body.childNodes]) {
    const clean = cleanNode(node);
    if (clean) out.append(clean);
  }
  return out;
}

function cleanNode(node) {
  if (node.nodeType === Node.TEXT_NODE) return document.createTextNode(node.textContent);
  if (node.nodeType !== Node.ELEMENT_NODE) return null;
  if (!TAGS.has(node.tagName)) {
    // Unknown element: keep its text, drop the element (script/style: drop everything).
    if (["SCRIPT", "STYLE", "IFRAME", "OBJECT", "TEMPLATE"].includes(node.tagName)) return null;
    const frag = document.createDocumentFragment();
    for (const child of node.childNodes) {
      const c = cleanNode(child);
      if (c) frag.append(c);
    }
    return frag;
  }
  const el = document.createElement(node.tagName.toLowerCase());
  for (const name of ATTRS[node.tagName] || []) {
    const value = node.getAttribute(name);
    if (value === null) continue;
    if (name === "href") {
      if (!SAFE_URL.test(value.trim())) continue;
      el.setAttribute("target", "_blank");
      el.setAttribute("rel", "noopener noreferrer nofollow");
    }
    el.setAttribute(name, value);
  }
  if (el.hasAttribute("data-mx-spoiler")) {
    el.classList.add("spoiler");
    el.tabIndex = 0;
    el.setAttribute("role", "button");
    el.setAttribute("aria-label", "Spoiler: press to reveal");
  }
  for (const child of node.childNodes) {
    const c = cleanNode(child);
    if (c) el.append(c);
  }
  return el;
}
