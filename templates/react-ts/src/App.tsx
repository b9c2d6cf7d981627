import { NavLink, Route, Routes } from 'react-router'

import { cn } from '@/lib/utils'
import About from '@/pages/About'
import Home from '@/pages/Home'
import NotFound from '@/pages/NotFound'

function navClass({ isActive }: { isActive: boolean }) {
  return cn(
    'text-sm font-medium transition-colors hover:text-foreground',
    isActive ? 'text-foreground' : 'text-muted-foreground',
  )
}

function App() {
  return (
    <div className="min-h-svh bg-background text-foreground">
      <header className="border-b">
        <nav className="mx-auto flex max-w-3xl items-center gap-6 px-6 py-4">
          <span className="font-semibold">Kiln</span>
          <NavLink to="/" end className={navClass}>
            Home
          </NavLink>
          <NavLink to="/about" className={navClass}>
            About
          </NavLink>
        </nav>
      </header>
      <main className="mx-auto max-w-3xl px-6 py-10">
        <Routes>
          <Route path="/" element={<Home />} />
          <Route path="/about" element={<About />} />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </main>
    </div>
  )
}

export default App
