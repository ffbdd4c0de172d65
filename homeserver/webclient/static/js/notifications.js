// Browser notifications for mentions and DMs while the tab is hidden (or another channel
// is open), when the user turned them on in settings and the browser allows them.

import { mentionsMe } from "./store.js";

export function notificationsWanted() {
  return localStorage.getItem("drocsid.notifications") !== "off" && "Notification" in window && Notification.permission === "granted";
}

export function watchNotifications(ctx) {
  return ctx.store.on("dispatch:MESSAGE_CREATE", (message) => {
    const { store } = ctx;
    if (!notificationsWanted() || message.author?.id === store.me?.id) return;
    const isDm = store.isDm(message.channel_id);
    if (!isDm && !mentionsMe(store, message)) return;
    if (document.visibilityState === "visible" && store.current.channelId === message.channel_id) return;
    if (store.presence.get(store.me.id)?.status === "dnd") return;
    const channel = store.channel(message.channel_id);
    const server = channel ? store.server(channel.server_id) : null;
    const author = channel ? store.displayName(message.author?.id, channel.server_id) : message.author?.display_name || store.displayName(message.author?.id);
    const title = isDm ? author : `${author} (#${channel?.name}, ${server?.name})`;
    const url = isDm ? `/channels/@me/${encodeURIComponent(message.channel_id)}` : `/channels/${encodeURIComponent(channel.server_id)}/${encodeURIComponent(channel.id)}`;
    const body = (message.content || (message.attachments?.length ? "Sent an attachment" : "")).slice(0, 200);
    try {
      const n = new Notification(title, { body, tag: message.id, icon: "/icons/icon-192.png", data: { url } });
      n.onclick = () => {
        window.focus();
        ctx.navigate(url);
        n.close();
      };
    } catch {
      navigator.serviceWorker?.ready.then((reg) => reg.showNotification(title, { body, tag: message.id, icon: "/icons/icon-192.png", data: { url } }));
    }
  });
}
