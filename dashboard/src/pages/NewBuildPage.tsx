import { useEffect, useState } from "react";
import { useNavigate } from "react-router-dom";
import { kiln } from "../api";

type Files = Record<string, string | { base64: string }>;
const SKIPPED = new Set(["node_modules", ".git", "dist", ".DS_Store"]);

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

async function fileContent(file: File): Promise<string | { base64: string }> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return { base64: toBase64(bytes) };
  }
}

/** The files of a dropped folder (entries API), paths relative to the folder. */
async function readEntry(entry: FileSystemEntry, prefix: string, out: Files): Promise<void> {
  if (SKIPPED.has(entry.name)) return;
  if (entry.isFile) {
    const file = await new Promise<File>((ok, fail) => (entry as FileSystemFileEntry).file(ok, fail));
    out[prefix + entry.name] = await fileContent(file);
  } else if (entry.isDirectory) {
    const reader = (entry as FileSystemDirectoryEntry).createReader();
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((ok, fail) => reader.readEntries(ok, fail));
      if (batch.length === 0) break;
      for (const child of batch) await readEntry(child, `${prefix}${entry.name}/`, out);
    }
  }
}

function stripRoot(files: Files): Files {
  const roots = new Set(Object.keys(files).map((p) => p.split("/")[0]));
  if (roots.size !== 1) return files;
  const [root] = roots;
  if (!Object.keys(files).every((p) => p.startsWith(root + "/"))) return files;
  return Object.fromEntries(Object.entries(files).map(([p, c]) => [p.slice(root.length + 1), c]));
}

/** Submit from the page: a template, or a dropped folder or tarball; then watch it build. */
export function NewBuildPage() {
  const navigate = useNavigate();
  const [templates, setTemplates] = useState<{ name: string; description: string }[]>([]);
  const [template, setTemplate] = useState("react-ts");
  const [project, setProject] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [hover, setHover] = useState(false);
  useEffect(() => {
    kiln.templates().then((t) => setTemplates(t.items)).catch((e: Error) => setProblem(e.message));
  }, []);
  const go = (work: Promise<{ id: string }>) => {
    setBusy(true);
    setProblem(null);
    work
      .then((b) => navigate(`/builds/${b.id}`))
      .catch((e: Error) => setProblem(e.message))
      .finally(() => setBusy(false));
  };
  const dropped = async (data: DataTransfer) => {
    const item = data.items[0];
    const entry = item?.webkitGetAsEntry?.();
    if (entry?.isDirectory) {
      const files: Files = {};
      await readEntry(entry, "", files);
      go(kiln.submit({ files: stripRoot(files), project: project || undefined }));
      return;
    }
    const file = data.files[0];
    if (!file) return;
    const gzip = /\.(tgz|tar\.gz)$/i.test(file.name);
    if (!gzip && !/\.tar$/i.test(file.name)) {
      setProblem("drop a project folder, or a .tar / .tar.gz / .tgz archive of one");
      return;
    }
    go(kiln.submitTarball(file, project, gzip));
  };
  return (
    <section className="new">
      <h1>New build</h1>
      <label className="field">
        Project <input value={project} placeholder="derived from package.json" onChange={(e) => setProject(e.target.value)} />
      </label>
      <div className="grid">
        <form
          className="card"
          onSubmit={(e) => {
            e.preventDefault();
            go(kiln.submit({ template, project: project || undefined, files: {} }));
          }}
        >
          <h2>From a template</h2>
          {templates.map((t) => (
            <label key={t.name} className="choice">
              <input type="radio" name="template" value={t.name} checked={template === t.name} onChange={() => setTemplate(t.name)} />
              <strong>{t.name}</strong> <span className="muted">{t.description}</span>
            </label>
          ))}
          <button className="button primary" disabled={busy} type="submit">
            Build {template}
          </button>
        </form>
        <div
          className={`card drop ${hover ? "hover" : ""}`}
          onDragOver={(e) => {
            e.preventDefault();
            setHover(true);
          }}
          onDragLeave={() => setHover(false)}
          onDrop={(e) => {
            e.preventDefault();
            setHover(false);
            void dropped(e.dataTransfer);
          }}
        >
          <h2>From your files</h2>
          <p>Drop a Vite project folder or a tarball here.</p>
          <input
            type="file"
            accept=".tar,.tgz,.gz"
            onChange={(e) => {
              const file = e.target.files?.[0];
              if (file) go(kiln.submitTarball(file, project, !/\.tar$/i.test(file.name)));
            }}
          />
        </div>
      </div>
      {problem && <p className="error-box">{problem}</p>}
    </section>
  );
}
