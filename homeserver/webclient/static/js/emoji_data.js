// The emoji picker's set: [character, name, category]. Names follow the common
// :shortcode: spellings so search by name works.

const RAW = {
  People: "😀 grinning|😃 smiley|😄 smile|😁 grin|😆 laughing|😅 sweat_smile|🤣 rofl|😂 joy|🙂 slight_smile|🙃 upside_down|😉 wink|😊 blush|😇 innocent|🥰 smiling_face_with_hearts|😍 heart_eyes|🤩 star_struck|😘 kissing_heart|😋 yum|😛 stuck_out_tongue|😜 stuck_out_tongue_winking_eye|🤪 zany_face|🤔 thinking|🤨 raised_eyebrow|😐 neutral_face|😑 expressionless|😶 no_mouth|🙄 rolling_eyes|😏 smirk|😬 grimacing|😌 relieved|😔 pensive|😪 sleepy|😴 sleeping|😷 mask|🤒 thermometer_face|🤯 exploding_head|🥳 partying_face|😎 sunglasses|🤓 nerd|😕 confused|😟 worried|😮 open_mouth|😲 astonished|😳 flushed|🥺 pleading_face|😢 cry|😭 sob|😱 scream|😤 triumph|😡 rage|🤬 cursing|💀 skull|🤡 clown|👻 ghost|👽 alien|🤖 robot|😺 smiley_cat",
  Gestures: "👍 thumbsup|👎 thumbsdown|👌 ok_hand|✌️ v|🤞 crossed_fingers|🤟 love_you_gesture|🤘 metal|👋 wave|👏 clap|🙌 raised_hands|🙏 pray|🤝 handshake|💪 muscle|👀 eyes|🫡 saluting_face|🤷 shrug|🤦 facepalm|🙋 raising_hand|💅 nail_care",
  Hearts: "❤️ heart|🧡 orange_heart|💛 yellow_heart|💚 green_heart|💙 blue_heart|💜 purple_heart|🖤 black_heart|🤍 white_heart|💔 broken_heart|💕 two_hearts|💖 sparkling_heart|💯 100|✨ sparkles|🔥 fire|⭐ star|🌟 star2|💥 boom|💤 zzz|💬 speech_balloon",
  Nature: "🐶 dog|🐱 cat|🐭 mouse|🦊 fox|🐻 bear|🐼 panda_face|🐸 frog|🐵 monkey_face|🐔 chicken|🐧 penguin|🦄 unicorn|🐝 bee|🦋 butterfly|🐢 turtle|🐍 snake|🐙 octopus|🌸 cherry_blossom|🌹 rose|🌻 sunflower|🌲 evergreen_tree|🍀 four_leaf_clover|🌈 rainbow|☀️ sunny|🌙 crescent_moon|⚡ zap|❄️ snowflake",
  Food: "🍎 apple|🍌 banana|🍉 watermelon|🍓 strawberry|🍕 pizza|🍔 hamburger|🍟 fries|🌮 taco|🍣 sushi|🍜 ramen|🍩 doughnut|🍪 cookie|🎂 birthday|🍰 cake|🍫 chocolate_bar|🍿 popcorn|☕ coffee|🍵 tea|🍺 beer|🍷 wine_glass|🥂 champagne_glass",
  Activities: "⚽ soccer|🏀 basketball|🏈 football|🎾 tennis|🎮 video_game|🎲 game_die|🎯 dart|🎸 guitar|🎧 headphones|🎤 microphone|🎉 tada|🎊 confetti_ball|🎁 gift|🏆 trophy|🥇 first_place|🚀 rocket|✈️ airplane|🚗 red_car",
  Objects: "💡 bulb|💻 computer|📱 iphone|⌨️ keyboard|🖥️ desktop|📷 camera|📚 books|📝 memo|📌 pushpin|📎 paperclip|🔒 lock|🔑 key|🔨 hammer|🛠️ tools|⚙️ gear|🧪 test_tube|📈 chart_with_upwards_trend|⏰ alarm_clock|🔔 bell|📣 mega",
  Symbols: "✅ white_check_mark|❌ x|⚠️ warning|❓ question|❗ exclamation|➕ heavy_plus_sign|➖ heavy_minus_sign|🔴 red_circle|🟢 green_circle|🔵 blue_circle|⬆️ arrow_up|⬇️ arrow_down|➡️ arrow_right|⬅️ arrow_left|🔁 repeat|🆗 ok|🆕 new|🆒 cool",
};

export const EMOJI = Object.entries(RAW).flatMap(([category, list]) =>
  list.split("|").map((entry) => {
    const space = entry.indexOf(" ");
    return { char: entry.slice(0, space), name: entry.slice(space + 1), category };
  }));

export const CATEGORIES = Object.keys(RAW);

const BY_NAME = new Map(EMOJI.map((e) => [e.name, e.char]));

export function emojiByName(name) {
  return BY_NAME.get(name);
}
