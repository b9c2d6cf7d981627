import { useState } from "react";
import { Link } from "react-router-dom";
import { useForm } from "react-hook-form";
import { zodResolver } from "@hookform/resolvers/zod";
import { z } from "zod";
import { useTheme } from "next-themes";
import { ArrowLeft, Save } from "lucide-react";
import { toast } from "sonner";

import {
  Accordion,
  AccordionContent,
  AccordionItem,
  AccordionTrigger,
} from "@/components/ui/accordion";
import {
  AlertDialog,
  AlertDialogAction,
  AlertDialogCancel,
  AlertDialogContent,
  AlertDialogDescription,
  AlertDialogFooter,
  AlertDialogHeader,
  AlertDialogTitle,
  AlertDialogTrigger,
} from "@/components/ui/alert-dialog";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardFooter, CardHeader, CardTitle } from "@/components/ui/card";
import { Form, FormControl, FormDescription, FormField, FormItem, FormLabel, FormMessage } from "@/components/ui/form";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { RadioGroup, RadioGroupItem } from "@/components/ui/radio-group";
import { Separator } from "@/components/ui/separator";
import { Slider } from "@/components/ui/slider";
import { Switch } from "@/components/ui/switch";
import { Tabs, TabsContent, TabsList, TabsTrigger } from "@/components/ui/tabs";

const profileSchema = z.object({
  displayName: z.string().min(2, "Display name must be at least 2 characters.").max(30),
  email: z.string().email("Please enter a valid email address."),
  company: z.string().optional(),
});

type ProfileValues = z.infer<typeof profileSchema>;

const defaults: ProfileValues = { displayName: "Jane Doe", email: "jane@acme.dev", company: "Acme Inc." };

const Settings = () => {
  const { theme, setTheme } = useTheme();
  const [notifications, setNotifications] = useState({ orders: true, weekly: false, marketing: false });
  const [refreshInterval, setRefreshInterval] = useState([30]);

  const form = useForm<ProfileValues>({ resolver: zodResolver(profileSchema), defaultValues: defaults });

  const onSubmit = (values: ProfileValues) => {
    toast.success("Profile updated", { description: `Saved changes for ${values.displayName}.` });
  };

  const resetAll = () => {
    form.reset(defaults);
    setNotifications({ orders: true, weekly: false, marketing: false });
    setRefreshInterval([30]);
    setTheme("light");
    toast("Settings reset to defaults");
  };

  return (
    <div className="mx-auto max-w-3xl space-y-6">
      <div className="flex items-center justify-between">
        <div>
          <h1 className="text-3xl font-bold tracking-tight">Settings</h1>
          <p className="text-muted-foreground">Manage your account and dashboard preferences.</p>
        </div>
        <Button variant="ghost" asChild>
          <Link to="/">
            <ArrowLeft />
            Back to dashboard
          </Link>
        </Button>
      </div>

      <Tabs defaultValue="profile">
        <TabsList>
          <TabsTrigger value="profile">Profile</TabsTrigger>
          <TabsTrigger value="preferences">Preferences</TabsTrigger>
          <TabsTrigger value="help">Help</TabsTrigger>
        </TabsList>

        <TabsContent value="profile">
          <Card>
            <Form {...form}>
              <form onSubmit={form.handleSubmit(onSubmit)}>
                <CardHeader>
                  <CardTitle>Profile</CardTitle>
                  <CardDescription>This is how others will see you.</CardDescription>
                </CardHeader>
                <CardContent className="space-y-4">
                  <FormField
                    control={form.control}
                    name="displayName"
                    render={({ field }) => (
                      <FormItem>
                        <FormLabel>Display name</FormLabel>
                        <FormControl>
                          <Input {...field} />
                        </FormControl>
                        <FormDescription>Shown in the header and on receipts.</FormDescription>
                        <FormMessage />
                      </FormItem>
                    )}
                  />
                  <FormField
                    control={form.control}
                    name="email"
                    render={({ field }) => (
                      <FormItem>
                        <FormLabel>Email</FormLabel>
                        <FormControl>
                          <Input type="email" {...field} />
                        </FormControl>
                        <FormMessage />
                      </FormItem>
                    )}
                  />
                  <FormField
                    control={form.control}
                    name="company"
                    render={({ field }) => (
                      <FormItem>
                        <FormLabel>Company</FormLabel>
                        <FormControl>
                          <Input {...field} />
                        </FormControl>
                        <FormMessage />
                      </FormItem>
                    )}
                  />
                </CardContent>
                <CardFooter>
                  <Button type="submit">
                    <Save />
                    Save profile
                  </Button>
                </CardFooter>
              </form>
            </Form>
          </Card>
        </TabsContent>

        <TabsContent value="preferences">
          <Card>
            <CardHeader>
              <CardTitle>Preferences</CardTitle>
              <CardDescription>Appearance, notifications and data refresh.</CardDescription>
            </CardHeader>
            <CardContent className="space-y-6">
              <div className="space-y-3">
                <Label>Theme</Label>
                <RadioGroup value={theme ?? "light"} onValueChange={setTheme} className="flex gap-6">
                  {["light", "dark", "system"].map((value) => (
                    <div key={value} className="flex items-center space-x-2">
                      <RadioGroupItem value={value} id={`theme-${value}`} />
                      <Label htmlFor={`theme-${value}`} className="capitalize">
                        {value}
                      </Label>
                    </div>
                  ))}
                </RadioGroup>
              </div>
              <Separator />
              <div className="space-y-4">
                {(
                  [
                    ["orders", "New orders", "Get notified when a customer places an order."],
                    ["weekly", "Weekly summary", "A digest of your store's performance every Monday."],
                    ["marketing", "Product updates", "News about features and improvements."],
                  ] as const
                ).map(([key, title, description]) => (
                  <div key={key} className="flex items-center justify-between gap-4">
                    <div>
                      <Label htmlFor={`notify-${key}`}>{title}</Label>
                      <p className="text-sm text-muted-foreground">{description}</p>
                    </div>
                    <Switch
                      id={`notify-${key}`}
                      checked={notifications[key]}
                      onCheckedChange={(checked) => setNotifications((prev) => ({ ...prev, [key]: checked }))}
                    />
                  </div>
                ))}
              </div>
              <Separator />
              <div className="space-y-3">
                <div className="flex items-center justify-between">
                  <Label>Auto-refresh interval</Label>
                  <span className="text-sm text-muted-foreground">{refreshInterval[0]} seconds</span>
                </div>
                <Slider value={refreshInterval} onValueChange={setRefreshInterval} min={5} max={120} step={5} />
              </div>
            </CardContent>
            <CardFooter className="justify-between">
              <AlertDialog>
                <AlertDialogTrigger asChild>
                  <Button variant="destructive">Reset to defaults</Button>
                </AlertDialogTrigger>
                <AlertDialogContent>
                  <AlertDialogHeader>
                    <AlertDialogTitle>Reset all settings?</AlertDialogTitle>
                    <AlertDialogDescription>
                      This restores your profile, notification and appearance settings to their defaults.
                    </AlertDialogDescription>
                  </AlertDialogHeader>
                  <AlertDialogFooter>
                    <AlertDialogCancel>Cancel</AlertDialogCancel>
                    <AlertDialogAction onClick={resetAll}>Reset</AlertDialogAction>
                  </AlertDialogFooter>
                </AlertDialogContent>
              </AlertDialog>
              <Button onClick={() => toast.success("Preferences saved")}>Save preferences</Button>
            </CardFooter>
          </Card>
        </TabsContent>

        <TabsContent value="help">
          <Card>
            <CardHeader>
              <CardTitle>FAQ</CardTitle>
            </CardHeader>
            <CardContent>
              <Accordion type="single" collapsible className="w-full">
                <AccordionItem value="export">
                  <AccordionTrigger>How do I export my data?</AccordionTrigger>
                  <AccordionContent>
                    Use the "Download report" button on the dashboard to export a CSV of the current period.
                  </AccordionContent>
                </AccordionItem>
                <AccordionItem value="team">
                  <AccordionTrigger>Can I invite my team?</AccordionTrigger>
                  <AccordionContent>Team seats are available on the Pro and Enterprise plans.</AccordionContent>
                </AccordionItem>
              </Accordion>
            </CardContent>
          </Card>
        </TabsContent>
      </Tabs>
    </div>
  );
};

export default Settings;
