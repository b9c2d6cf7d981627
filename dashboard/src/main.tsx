import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter, Route, Routes } from "react-router-dom";
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { Shell } from "./components/Shell";
import { BuildPage } from "./pages/BuildPage";
import { NewBuildPage } from "./pages/NewBuildPage";
import { OpsPage } from "./pages/OpsPage";
import { ProjectPage } from "./pages/ProjectPage";
import { ProjectsPage } from "./pages/ProjectsPage";

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <BrowserRouter>
      <Shell>
        <Routes>
          <Route path="/" element={<ProjectsPage />} />
          <Route path="/projects/:project" element={<ProjectPage />} />
          <Route path="/builds/:id" element={<BuildPage />} />
          <Route path="/ops" element={<OpsPage />} />
          <Route path="/new" element={<NewBuildPage />} />
          <Route path="*" element={<p className="empty">No such page.</p>} />
        </Routes>
      </Shell>
    </BrowserRouter>
  </StrictMode>,
);
