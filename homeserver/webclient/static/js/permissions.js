// Permission bits (Discord's positions where the names match), as BigInt because some
// lie above 2^32. The server checks every request; the client uses these to offer only
// what will be allowed and to label the settings.

const P = (key, bit, label, description, scope = "both") => ({ key, bit: 1n << BigInt(bit), label, description, scope });

export const PERMISSIONS = [
  P("ADMINISTRATOR", 3, "Administrator", "Every permission, and every channel, whatever the overwrites say.", "server"),
  P("VIEW_CHANNEL", 10, "View Channels", "See the channel and read what arrives in it."),
  P("MANAGE_CHANNELS", 4, "Manage Channels", "Create, edit and delete channels."),
  P("MANAGE_ROLES", 28, "Manage Roles", "Create and edit roles below one's own, and channel overwrites."),
  P("MANAGE_SERVER", 5, "Manage Server", "Change the server's name, description and icon; see its invites.", "server"),
  P("VIEW_AUDIT_LOG", 7, "View Audit Log", "Read the record of changes made in the server.", "server"),
  P("MANAGE_WEBHOOKS", 29, "Manage Webhooks", "Create, edit and delete webhooks."),
  P("CREATE_INSTANT_INVITE", 0, "Create Invite", "Invite new people to the server."),
  P("CHANGE_NICKNAME", 26, "Change Nickname", "Change one's own nickname in this server.", "server"),
  P("MANAGE_NICKNAMES", 27, "Manage Nicknames", "Change other members' nicknames.", "server"),
  P("KICK_MEMBERS", 1, "Kick Members", "Remove members (they may come back with an invite).", "server"),
  P("BAN_MEMBERS", 2, "Ban Members", "Remove members for good.", "server"),
  P("MODERATE_MEMBERS", 40, "Timeout Members", "Stop members from chatting for a while.", "server"),
  P("SEND_MESSAGES", 11, "Send Messages", "Post messages in text channels."),
  P("SEND_MESSAGES_IN_THREADS", 38, "Send Messages in Threads", "Post in threads."),
  P("MANAGE_THREADS", 34, "Manage Threads", "Rename, archive and delete threads."),
  P("EMBED_LINKS", 14, "Embed Links", "Links show a preview."),
  P("ATTACH_FILES", 15, "Attach Files", "Upload files and images."),
  P("ADD_REACTIONS", 6, "Add Reactions", "React to messages with emoji."),
  P("USE_EXTERNAL_EMOJIS", 18, "Use External Emoji", "Use emoji from other servers."),
  P("MENTION_EVERYONE", 17, "Mention @everyone, @here and All Roles", "Ping everyone, those online, or any role."),
  P("MANAGE_MESSAGES", 13, "Manage Messages", "Delete and pin others' messages."),
  P("READ_MESSAGE_HISTORY", 16, "Read Message History", "Read messages sent before one arrived."),
  P("CONNECT", 20, "Connect", "Join voice channels."),
  P("SPEAK", 21, "Speak", "Talk in voice channels."),
  P("STREAM", 9, "Video", "Share the screen or camera in voice channels."),
  P("MUTE_MEMBERS", 22, "Mute Members", "Mute others in voice."),
  P("DEAFEN_MEMBERS", 23, "Deafen Members", "Deafen others in voice."),
  P("MOVE_MEMBERS", 24, "Move Members", "Move others between voice channels."),
  P("MANAGE_EXPRESSIONS", 30, "Manage Expressions", "Custom emoji and stickers.", "server"),
  P("USE_SOUNDBOARD", 42, "Use Soundboard", "Play sounds in voice."),
  P("MANAGE_SOUNDBOARD", 43, "Manage Soundboard", "Add and remove sounds.", "server"),
];

export const BITS = Object.fromEntries(PERMISSIONS.map((p) => [p.key, p.bit]));
export const ALL = PERMISSIONS.reduce((acc, p) => acc | p.bit, 0n);

export function toBits(value) {
  try {
    return BigInt(value ?? 0);
  } catch {
    return 0n;
  }
}

export function hasPermission(bits, key) {
  const value = toBits(bits);
  if (value & BITS.ADMINISTRATOR) return true;
  return (value & BITS[key]) === BITS[key];
}
