import { subDays, format } from "date-fns";

export type Order = {
  id: string;
  customer: string;
  email: string;
  amount: number;
  status: "paid" | "pending" | "refunded";
  date: Date;
};

export type DailyRevenue = {
  day: string;
  revenue: number;
  orders: number;
};

const customers = [
  ["Olivia Martin", "olivia.martin@email.com"],
  ["Jackson Lee", "jackson.lee@email.com"],
  ["Isabella Nguyen", "isabella.nguyen@email.com"],
  ["William Kim", "will@email.com"],
  ["Sofia Davis", "sofia.davis@email.com"],
] as const;

const statuses: Order["status"][] = ["paid", "pending", "paid", "refunded", "paid"];

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function fetchRevenue(days = 14): Promise<DailyRevenue[]> {
  await wait(150);
  const today = new Date();
  return Array.from({ length: days }, (_, i) => {
    const date = subDays(today, days - 1 - i);
    const base = 1800 + Math.round(900 * Math.sin(i / 2));
    return {
      day: format(date, "MMM d"),
      revenue: base + i * 45,
      orders: 20 + ((i * 7) % 15),
    };
  });
}

export async function fetchRecentOrders(): Promise<Order[]> {
  await wait(200);
  const today = new Date();
  return customers.map(([customer, email], i) => ({
    id: `ORD-${1042 + i}`,
    customer,
    email,
    amount: Math.round((39 + i * 57.5) * 100) / 100,
    status: statuses[i],
    date: subDays(today, i),
  }));
}
