// Mentions as people type them: "@name" becomes the user ID ("@name:server", which is how
// the server and Matrix clients recognise a mention) when it names someone who can
// be pinged here (a member's username or single-word display name); @everyone, @here and
// anything inside `code` stay as written.

const AT_NAME = /(^|[^\w<@`])@([\w.-]{2,32})(?![\w.:-])/g;

// candidates: [{id, username, display_name}]
export function resolveMentions(text, candidates) {
  if (!text.includes("@") || !candidates.length) return text;
  const byName = new Map();
  for (const c of candidates) {
    byName.set(c.username.toLowerCase(), c.id);
    if (c.display_name && !/\s/.test(c.display_name) && !byName.has(c.display_name.toLowerCase())) {
      byName.set(c.display_name.toLowerCase(), c.id);
    }
  }
  // Leave code spans and blocks alone.
  return text.split(/(```[\s\S]*?```|`[^`]*`)/).map((part, i) => i % 2 ? part : part.replace(AT_NAME, (all, before, name) => {
    if (name === "everyone" || name === "here") return all;
    const id = byName.get(name.toLowerCase());
    return id ? `${before}${id}` : all;
  })).join("");
}

// The "@partial" being typed just before the caret, or null.
export function mentionQuery(text, caret) {
  const match = /(^|[^\w<])@([\w.-]{0,32})$/.exec(text.slice(0, caret));
  return match ? { query: match[2], start: caret - match[2].length - 1 } : null;
}

export function matchCandidates(candidates, query, limit = 8) {
  const q = query.toLowerCase();
  return candidates
    .filter((c) => c.username.toLowerCase().startsWith(q) || (c.display_name || "").toLowerCase().startsWith(q))
    .sort((a, b) => a.username.localeCompare(b.username))
    .slice(0, limit);
}
