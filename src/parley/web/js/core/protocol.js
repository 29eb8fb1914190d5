// Types only (JSDoc, checked by `tsc --checkJs`): the server messages the client reads,
// as docs/protocol.md describes them.  No code: nothing imports this module at run time.

/** @typedef {"host" | "participant" | "observer" | "bot"} Role */

/**
 * @typedef {object} Participant
 * @property {string} id
 * @property {string} name
 * @property {Role} [role]
 * @property {boolean} [mic]
 * @property {boolean} [cam]
 * @property {boolean} [screen]
 * @property {boolean} [hand]
 * @property {number | null} [hand_at] null unless the hand is raised
 * @property {number} [joined_at]
 */

/**
 * @typedef {object} ChatMessage
 * @property {number} id
 * @property {number} ts
 * @property {string} [room]
 * @property {string} [sender]
 * @property {string} [name]
 * @property {string} text
 * @property {string | null} [to] set on a private message
 * @property {boolean} [system] a line written by the server
 * @property {string | null} [kind] a system entry's kind ("note", "joined", "left", "poll"…)
 * @property {Record<string, unknown> | null} [data] a system entry's structured content
 * @property {boolean} [deleted] client side: deleted (`message-deleted`), shown as a tombstone
 */

/**
 * @typedef {object} RawRoomSettings
 * @property {boolean} [locked]
 * @property {boolean} [lobby]
 * @property {boolean} [has_password]
 * @property {number | null} [max_participants]
 * @property {boolean} [stage] present (true) in stage mode
 * @property {"stage" | "questions"} [chat] present when the room's chat is limited
 */

/** @typedef {{ id: string, name: string, since?: number }} LobbyEntry */

/**
 * @typedef {object} Welcome
 * @property {"welcome"} type
 * @property {string} id
 * @property {string} [resume]
 * @property {boolean} [resumed]
 * @property {{ name?: string, media?: string, settings?: RawRoomSettings, recording?: boolean } | null} [room]
 * @property {Participant[]} participants
 * @property {ChatMessage[]} [history]
 * @property {boolean} [history_more]
 * @property {RTCIceServer[]} [ice_servers]
 * @property {{ chat_max_chars?: number }} [limits]
 * @property {BreakoutHere} [breakout] set when this room is a breakout of the meeting
 * @property {number} [participant_count] big rooms: how many are in it (`participants` is a first page)
 * @property {string | null} [roster_next] big rooms: the cursor of the next roster page
 */

/**
 * @typedef {object} BreakoutHere
 * @property {string} main the main room's name
 * @property {number} index
 * @property {string} title
 * @property {number | null} [ends_at] ms since the epoch
 * @property {number | null} [closing_at] ms since the epoch
 */

/**
 * @typedef {object} BreakoutRoom
 * @property {number} index
 * @property {string} title
 * @property {string} room
 * @property {string[]} members participant ids
 * @property {string[]} names their display names
 */

/**
 * @typedef {object} BreakoutsState
 * @property {string} main
 * @property {boolean} open
 * @property {BreakoutRoom[]} [rooms]
 * @property {number | null} [ends_at]
 * @property {number | null} [closing_at]
 */

/** @typedef {{ type: "history", messages: ChatMessage[], more?: boolean, ref?: string, room?: string }} History */

/** @typedef {{ type: "error", code: string, message?: string, ref?: string }} ErrorMessage */

/** @typedef {{ type: "signal", from: string, payload: any }} Signal */

/** @typedef {{ type: "reaction", from: string, emoji: string }} Reaction */

/** @typedef {"mic" | "cam" | "screen"} DeviceKind */

/**
 * A poll (`poll` message).  Counts go to hosts while it is open and to everyone once closed.
 * @typedef {object} PollInfo
 * @property {string} id
 * @property {string} question
 * @property {string[]} options
 * @property {boolean} multiple
 * @property {boolean} anonymous
 * @property {string} by the host who started it
 * @property {boolean} [closed]
 * @property {number | null} [voters]
 * @property {number[] | null} [counts]
 * @property {string[][] | null} [names] per option, who chose it (named polls)
 * @property {number[] | null} [mine] our own choices
 */

/**
 * A message the client sends (docs/protocol.md "Client → server"); `ref` correlates errors.
 * @typedef {{ type: string, ref?: string, [field: string]: unknown }} ClientMessage
 */

export {};
