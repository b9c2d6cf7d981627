"""The worker's side of an app in a subfolder: its folders and package.jsons on the host.

``project/app_folder.py`` decides (pure) where the app is and where it installs; this reads
the files that decision needs from a build's extracted workspace, and hands the pipeline
its folders only through paths that are not links (a project's script could swap its app
folder for a link into the host's files between two steps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.builds.install import Manifest
from orchestrator.errors import BuildError, ErrorCode
from orchestrator.project import app_folder
from orchestrator.project.app_folder import AppLayout
from orchestrator.project.input import parse_package_json


@dataclass(frozen=True)
class Manifests:
    """The package.json files a build reads: its install root's and its app's (the same file
    unless the app is a member of a workspace)."""

    install: Manifest
    app: Manifest


@dataclass(frozen=True)
class ProjectFolders:
    """A build's workspace on the host and where in it the app is and installs."""

    workspace: Path
    layout: AppLayout = field(default_factory=AppLayout)

    @classmethod
    def read(cls, workspace: Path, root: str | None) -> ProjectFolders:
        """The folders of the app in ``root``, from the manifests that enclose it."""
        files = {}
        for name in app_folder.layout_files(root):
            path = workspace / name
            if path.is_file() and not path.is_symlink():
                files[name] = path.read_bytes()
        return cls(workspace, app_folder.layout(root, files))

    def folder(self, relative: str) -> Path:
        """A folder of the workspace, refused (``unsafe_output``) when a link leads it
        elsewhere."""
        path = self.workspace
        for part in relative.split("/") if relative else ():
            path = path / part
            if path.is_symlink():
                raise BuildError(
                    f"{relative} became a link in the build's workspace; Kiln reads only "
                    "the project's own folders",
                    code=ErrorCode.UNSAFE_OUTPUT,
                )
        return path

    @property
    def install(self) -> Path:
        """Where dependencies install: the app's folder or its workspace root."""
        return self.folder(self.layout.install)

    @property
    def app(self) -> Path:
        """The app's folder (its build runs and its dist/ is published there)."""
        return self.folder(self.layout.app)

    def manifests(self) -> Manifests:
        """The install root's and the app's package.json, parsed."""
        return Manifests(self._manifest(self.layout.install), self._manifest(self.layout.app))

    def _manifest(self, relative: str) -> Manifest:
        where = f"{relative}/package.json" if relative else "package.json"
        path = self.folder(relative) / "package.json"
        if not path.is_file() or path.is_symlink():
            raise BuildError(f"the project has no {where}", code=ErrorCode.BUILD_FAILED)
        return parse_package_json({where: path.read_bytes()}, where)

    def describe(self) -> str | None:
        """The ``[kiln]`` line that says where the app is, or None at the top."""
        layout = self.layout
        if layout.in_workspace:
            return (
                f"workspace ({layout.workspace}): installing at "
                f"{layout.install or 'the top'}, building {layout.app}"
            )
        return f"app folder: {layout.app}" if layout.app else None
