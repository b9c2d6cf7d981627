import { Activity, CreditCard, DollarSign, Download, Users } from "lucide-react";
import { toast } from "sonner";

import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Progress } from "@/components/ui/progress";
import { NewOrderForm } from "@/components/dashboard/NewOrderForm";
import { RecentOrders } from "@/components/dashboard/RecentOrders";
import { RevenueChart } from "@/components/dashboard/RevenueChart";
import { StatCard } from "@/components/dashboard/StatCard";

const stats = [
  { title: "Total revenue", value: "$45,231.89", change: 20.1, icon: DollarSign },
  { title: "Subscriptions", value: "+2,350", change: 180.1, icon: Users },
  { title: "Sales", value: "+12,234", change: 19, icon: CreditCard },
  { title: "Active now", value: "+573", change: -2.4, icon: Activity },
];

const Index = () => {
  return (
    <div className="space-y-6">
      <div className="flex flex-col gap-4 sm:flex-row sm:items-center sm:justify-between">
        <div>
          <h1 className="text-3xl font-bold tracking-tight">Lovable-style dashboard</h1>
          <p className="text-muted-foreground">Here's what's happening with your store today.</p>
        </div>
        <Button
          variant="outline"
          onClick={() => toast("Report is being generated", { description: "We'll email you when it's ready." })}
        >
          <Download />
          Download report
        </Button>
      </div>

      <div className="grid gap-4 md:grid-cols-2 lg:grid-cols-4">
        {stats.map((stat) => (
          <StatCard key={stat.title} {...stat} />
        ))}
      </div>

      <div className="grid gap-4 lg:grid-cols-7">
        <RevenueChart />
        <RecentOrders />
      </div>

      <div className="grid gap-4 lg:grid-cols-3">
        <div className="lg:col-span-2">
          <NewOrderForm />
        </div>
        <Card>
          <CardHeader>
            <CardTitle>Monthly goal</CardTitle>
            <CardDescription>$45,231 of $60,000 target</CardDescription>
          </CardHeader>
          <CardContent className="space-y-4">
            <Progress value={75} />
            <p className="text-sm text-muted-foreground">
              You're 75% of the way there. Keep it up — 9 days left this month.
            </p>
          </CardContent>
        </Card>
      </div>
    </div>
  );
};

export default Index;
