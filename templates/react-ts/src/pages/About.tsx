import { Link } from 'react-router'

import { Button } from '@/components/ui/button'
import { Card, CardContent, CardHeader, CardTitle } from '@/components/ui/card'

const stack = [
  'React 19 + TypeScript',
  'Vite',
  'Tailwind CSS v4 (@tailwindcss/vite)',
  'React Router v7',
  'shadcn-style components (class-variance-authority, clsx, tailwind-merge)',
]

function About() {
  return (
    <div className="flex flex-col gap-6">
      <h1 className="text-3xl font-bold tracking-tight">About</h1>
      <Card>
        <CardHeader>
          <CardTitle>What is in this template</CardTitle>
        </CardHeader>
        <CardContent>
          <ul className="list-disc space-y-1 pl-5 text-sm">
            {stack.map((item) => (
              <li key={item}>{item}</li>
            ))}
          </ul>
        </CardContent>
      </Card>
      <div>
        <Button variant="secondary" asChild>
          <Link to="/">Back home</Link>
        </Button>
      </div>
    </div>
  )
}

export default About
