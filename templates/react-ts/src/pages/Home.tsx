import { useState } from 'react'
import { Link } from 'react-router'

import { Button } from '@/components/ui/button'
import {
  Card,
  CardContent,
  CardDescription,
  CardFooter,
  CardHeader,
  CardTitle,
} from '@/components/ui/card'
import { Input } from '@/components/ui/input'

function Home() {
  const [count, setCount] = useState(0)
  const [name, setName] = useState('')

  return (
    <div className="flex flex-col gap-8">
      <section className="flex flex-col gap-4">
        <h1 className="text-4xl font-bold tracking-tight">
          Kiln react-ts template
        </h1>
        <p className="text-muted-foreground">
          React + TypeScript + Vite + Tailwind CSS + React Router, with a few
          shadcn-style components. Edit <code>src/pages/Home.tsx</code> to get
          started.
        </p>
        <div className="flex gap-3">
          <Button onClick={() => setCount((c) => c + 1)}>
            Count is {count}
          </Button>
          <Button variant="outline" asChild>
            <Link to="/about">About this template</Link>
          </Button>
        </div>
      </section>

      <Card>
        <CardHeader>
          <CardTitle>Say hello</CardTitle>
          <CardDescription>A tiny form built from the ui components.</CardDescription>
        </CardHeader>
        <CardContent>
          <Input
            placeholder="Your name"
            value={name}
            onChange={(e) => setName(e.target.value)}
          />
        </CardContent>
        <CardFooter>
          <p className="text-sm">Hello, {name.trim() || 'world'}!</p>
        </CardFooter>
      </Card>
    </div>
  )
}

export default Home
