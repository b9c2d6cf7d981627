// Following Kiln's live channel (SSE) with the bearer token, resuming by event id.
import { fetchEventSource } from "@microsoft/fetch-event-source";
import { authHeaders } from "./api";

export interface LiveEvent {
  id: string;
  event: string;
  data: unknown;
}

/** Follow an SSE stream; returns a function that stops it. Reconnects from the last id. */
export function follow(path: string, onEvent: (event: LiveEvent) => void, onClose?: () => void): () => void {
  const controller = new AbortController();
  let lastId: string | null = null;
  let ended = false;
  void fetchEventSource(path, {
    signal: controller.signal,
    openWhenHidden: true,
    headers: authHeaders(),
    async onopen(response) {
      if (!response.ok) throw new Error(`stream answered ${response.status}`);
    },
    onmessage(message) {
      if (!message.event && !message.data) return; // keep-alive
      if (message.id) lastId = message.id;
      let data: unknown = message.data;
      try {
        data = JSON.parse(message.data);
      } catch {
        /* plain text */
      }
      onEvent({ id: message.id, event: message.event || "message", data });
      if (message.event === "end") {
        ended = true;
        controller.abort();
        onClose?.();
      }
    },
    onclose() {
      if (ended) return;
      // The server closed without `end` (restart, slow-follower cut): resume after a pause.
      throw new Error("closed");
    },
    onerror() {
      if (ended || controller.signal.aborted) throw new Error("stopped");
      return 1000; // retry in 1 s; fetch-event-source sends Last-Event-ID itself
    },
  });
  void lastId;
  return () => controller.abort();
}
