// Talking to Kiln's REST API: JSON in and out, the bearer token when the server wants one.

export type Status = "queued" | "running" | "succeeded" | "failed" | "cancelled";

export interface DiagnosticItem {
  category?: string;
  file?: string | null;
  line?: number | null;
  column?: number | null;
  message: string;
}

export interface BuildError {
  code: string;
  message: string;
  log_tail?: string;
  diagnostics?: { category?: string; fingerprint?: string; items?: DiagnosticItem[] } | null;
}

export interface Build {
  id: string;
  project: string;
  template?: string | null;
  status: Status;
  phase: string;
  created_at: string;
  started_at?: string | null;
  finished_at?: string | null;
  duration_ms?: number | null;
  queued_ms?: number | null;
  queue?: { position?: number | null; waited_ms?: number | null } | null;
  error?: BuildError | null;
  preview_url?: string | null;
  urls?: { preview?: string; latest?: string } | null;
  reused_from?: string | null;
  cache?: Record<string, string> | null;
  environment?: { node?: string; package_manager?: string } | null;
  generation?: GenerationSummary | null;
}

export interface GenerationRound {
  round: number;
  kind: string;
  model?: string;
  seconds?: number;
  prompt_tokens?: number;
  completion_tokens?: number;
  summary?: string;
  files?: string[];
  deleted?: string[];
  error?: string;
}

export interface GenerationSummary {
  prompt?: string;
  model?: string;
  rounds?: GenerationRound[] | number;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

export interface ProjectRow {
  project: string;
  latest: Build | null;
  latest_succeeded: string | null;
  latest_url: string;
  recent: { id: string; status: Status; duration_ms: number | null; created_at: string }[];
  dev: { status: string; url: string } | null;
}

const TOKEN_KEY = "kiln.token";

export function token(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

export function authHeaders(): Record<string, string> {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

/** Raised for a non-2xx answer; `code` is Kiln's error code when the body has one. */
export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Subscribers told when the server says the token is missing or wrong. */
export const unauthorized = new EventTarget();

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers: Record<string, string> = { ...authHeaders(), ...(init.headers as Record<string, string>) };
  if (init.body && typeof init.body === "string" && !headers["Content-Type"]) {
    headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, { ...init, headers });
  if (response.status === 401) unauthorized.dispatchEvent(new Event("unauthorized"));
  const text = await response.text();
  const body = text ? safeJson(text) : null;
  if (!response.ok) {
    const error = (body as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(response.status, error?.code ?? "http_error", error?.message ?? text ?? response.statusText);
  }
  return body as T;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export const kiln = {
  projects: () => api<{ items: ProjectRow[] }>("/api/v1/projects"),
  builds: (project?: string, limit = 50) =>
    api<{ items: Build[] }>(`/api/v1/builds?limit=${limit}${project ? `&project=${encodeURIComponent(project)}` : ""}`),
  build: (id: string) => api<Build>(`/api/v1/builds/${id}`),
  generation: (id: string) => api<Record<string, unknown>>(`/api/v1/builds/${id}/generation`),
  cancel: (id: string) => api<unknown>(`/api/v1/builds/${id}/cancel`, { method: "POST" }),
  retry: (id: string) => api<{ id: string }>(`/api/v1/builds/${id}/retry`, { method: "POST" }),
  templates: () => api<{ items: { name: string; description: string }[] }>("/api/v1/templates"),
  submit: (body: unknown) => api<{ id: string }>("/api/v1/builds", { method: "POST", body: JSON.stringify(body) }),
  submitTarball: (data: Blob, project: string, gzip: boolean) =>
    api<{ id: string }>(`/api/v1/builds?project=${encodeURIComponent(project)}`, {
      method: "POST",
      body: data,
      headers: { "Content-Type": gzip ? "application/gzip" : "application/x-tar" },
    }),
  ops: () => api<OpsSummary>("/api/v1/ops"),
  dev: (project: string) => api<DevSession>(`/api/v1/projects/${encodeURIComponent(project)}/dev`),
  devStart: (project: string, body: unknown) =>
    api<DevSession>(`/api/v1/projects/${encodeURIComponent(project)}/dev`, { method: "POST", body: JSON.stringify(body) }),
  devStop: (project: string) => api<unknown>(`/api/v1/projects/${encodeURIComponent(project)}/dev`, { method: "DELETE" }),
};

export interface DevSession {
  project: string;
  status: string;
  url: string;
  revision: number;
  started_at?: string | null;
  ready_at?: string | null;
  error?: BuildError | null;
}

export interface OpsSummary {
  workers: { name: string; state: string; current_build: string | null; last_heartbeat: string | null }[];
  queue: { queued: number; running: number; suspended: boolean; by_project: Record<string, number> };
  results: { hour: string; code: string; count: number }[];
  steps: { step: string; count: number; p50: number | null; p95: number | null; p99: number | null }[];
  cache: { name: string; hits: number; total: number }[];
  disk: { name: string; bytes: number }[];
  free_disk_mb: number;
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export function ago(iso: string | null | undefined): string {
  if (!iso) return "—";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}
