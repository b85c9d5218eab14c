/**
 * What the page does for an action on a person or on someone else's
 * message, from the member list, a message's menu or the reports panel:
 * open a direct conversation, block or unblock, report a message, and the
 * moderators' Kick, Mute, Ban and Delete. Each act on someone asks first in
 * the page (`view_mod_dialog.js`), with an optional reason; reports need
 * one. The acts go through the client's outbox; the server's answer shows as
 * the act's notice in the log, or its refusal in the error banner.
 *
 * @module
 */

import { BAN_CHOICES, MUTE_CHOICES } from "./moderation_text.js";

/** @typedef {import("./chat_client.js").ChatClient} ChatClient */
/** @typedef {import("./view_mod_dialog.js").ModDialog} ModDialog */
/** @typedef {import("./view_status.js").StatusView} StatusView */
/** A person acted on. @typedef {{ id: string, name: string }} Person */

/** The page's actions on people and messages. */
export class Actions {
  #client;
  #dialog;
  #status;

  /**
   * @param {{ client: ChatClient, dialog: ModDialog, status: StatusView }} parts
   */
  constructor({ client, dialog, status }) {
    this.#client = client;
    this.#dialog = dialog;
    this.#status = status;
  }

  /**
   * Opens the direct conversation with `person` (it becomes the room in view).
   *
   * @param {Person} person
   */
  message(person) {
    if (this.#client.direct(person.name, person.id) === false) {
      this.#status.showError("Offline: a conversation can be opened once reconnected.");
    }
  }

  /**
   * Blocks `person`, or unblocks them when blocked; the info banner says what
   * it did, with "Undo".
   *
   * @param {Person} person
   */
  toggleBlock(person) {
    const client = this.#client;
    if (client.isBlocked(person.id)) {
      client.unblock(person.id);
      this.#status.showInfo(`You unblocked ${person.name}.`, {
        action: { label: "Undo", run: () => client.block(person) },
      });
      return;
    }
    if (!client.block(person)) {
      return this.#status.showError(`Cannot block ${person.name}: you block too many people.`);
    }
    this.#status.showInfo(
      `You blocked ${person.name}: their messages are hidden, and they cannot send you direct messages.`,
      { action: { label: "Undo", run: () => client.unblock(person.id) } },
    );
  }

  /**
   * Asks why, then reports message `message` of `room` to its moderators.
   *
   * @param {string} room
   * @param {{ id: number, name: string, text: string }} message
   * @param {HTMLElement | null} returnTo
   */
  report(room, message, returnTo) {
    this.#dialog.ask({
      title: `Report ${message.name}'s message?`,
      quote: message.text,
      reasonLabel: "Why (the room's moderators see this)",
      reasonRequired: true,
      hint: "Only the room's moderators see reports.",
      confirm: "Report",
      danger: false,
    }, ({ reason }) => {
      if (!this.#client.report(message.id, reason, { room })) {
        this.#status.showError("Offline: the report was not sent. Try again once reconnected.");
      }
    }, returnTo);
  }

  /**
   * Asks, then removes `person` from `room`; they may come back.
   *
   * @param {string} room
   * @param {Person} person
   * @param {HTMLElement | null} returnTo
   */
  kick(room, person, returnTo) {
    this.#dialog.ask(
      {
        title: `Kick ${person.name}?`,
        hint: `${person.name} leaves the room now, and may join it again.`,
        confirm: "Kick",
      },
      ({ reason }) => this.#act(room, "kick", { userId: person.id, reason }),
      returnTo,
    );
  }

  /**
   * Asks for how long, then mutes `person` in `room`.
   *
   * @param {string} room
   * @param {Person} person
   * @param {HTMLElement | null} returnTo
   */
  mute(room, person, returnTo) {
    this.#dialog.ask(
      {
        title: `Mute ${person.name}?`,
        choices: MUTE_CHOICES,
        hint: `${person.name} can read the room but not write in it until the mute ends.`,
        confirm: "Mute",
      },
      ({ ms, reason }) => this.#act(room, "mute", { userId: person.id, durationMs: ms, reason }),
      returnTo,
    );
  }

  /**
   * Asks for how long, then bans `person` from `room`.
   *
   * @param {string} room
   * @param {Person} person
   * @param {HTMLElement | null} returnTo
   */
  ban(room, person, returnTo) {
    this.#dialog.ask({
      title: `Ban ${person.name}?`,
      choices: BAN_CHOICES,
      choice: 1,
      hint: `${person.name} leaves the room now, and cannot join it again until the ban ends.`,
      confirm: "Ban",
    }, ({ ms, reason }) =>
      this.#act(room, "ban", {
        userId: person.id,
        ...(ms > 0 ? { durationMs: ms } : {}),
        reason,
      }), returnTo);
  }

  /**
   * Asks, then deletes someone's message `message` of `room` as a moderator.
   *
   * @param {string} room
   * @param {{ id: number, name: string, text: string }} message
   * @param {HTMLElement | null} returnTo
   */
  remove(room, message, returnTo) {
    this.#dialog.ask(
      {
        title: `Delete ${message.name}'s message?`,
        ...(message.text ? { quote: message.text } : {}),
        hint: "Everyone in the room will see that it was deleted; its reports close.",
        confirm: "Delete",
      },
      ({ reason }) => this.#act(room, "delete", { ref: message.id, reason }),
      returnTo,
    );
  }

  /**
   * @param {string} room
   * @param {string} action
   * @param {{ userId?: string, ref?: number, durationMs?: number, reason?: string }} fields
   */
  #act(room, action, fields) {
    if (!this.#client.joinedRooms.includes(room)) {
      return this.#status.showError(`You are no longer in that room.`);
    }
    this.#client.moderate(action, { room, ...fields });
  }
}
