// Times as people read them: "Today at 14:05", "Yesterday at ...", or the date.

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateFmt = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "2-digit", day: "2-digit" });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });

export function shortTime(iso) {
  return timeFmt.format(new Date(iso));
}

export function fullTime(iso) {
  return fullFmt.format(new Date(iso));
}

export function calendarTime(iso) {
  const d = new Date(iso);
  const today = new Date();
  const yesterday = new Date(today);
  yesterday.setDate(today.getDate() - 1);
  if (d.toDateString() === today.toDateString()) return `Today at ${timeFmt.format(d)}`;
  if (d.toDateString() === yesterday.toDateString()) return `Yesterday at ${timeFmt.format(d)}`;
  return `${dateFmt.format(d)} ${timeFmt.format(d)}`;
}

export const GROUP_WINDOW_MS = 5 * 60 * 1000;
