import type { Status } from "../api";

export function StatusPill({ status, phase }: { status: Status | string; phase?: string }) {
  const detail = status === "running" && phase ? ` · ${phase}` : "";
  return (
    <span className={`pill ${status}`} data-status={status}>
      {status}
      {detail}
    </span>
  );
}
