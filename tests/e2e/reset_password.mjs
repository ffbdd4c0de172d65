// The password-reset and email-verification pages (js/views/reset_password.js), reached
// through the client's routes. Phases:
// "forgot" asks for a reset link; "reset" uses one (twice) and then confirms an address.

import { args, closeAll, launch, newUser, pageErrors, report, screenshotFailuresTo, shot, step } from "./lib.mjs";

const { base, shots, phase, email, resetToken, verifyToken, newPassword } = args();
screenshotFailuresTo(shots);
const out = { step: "start" };
const browser = await launch();
const page = (await newUser(browser, base, "visitor")).page;

// Opens one of the pages the way a user reaches it: "Forgot your password?" on the login
// page, or the link from the mail.
async function render(fn, token, url) {
  if (fn === "renderForgotPassword") {
    await page.goto(`${base}/login`);
    await page.locator('[data-testid="forgot-password"]').click();
    return;
  }
  const path = fn === "renderResetPassword" ? "/reset-password" : "/verify-email";
  await page.goto(`${base}${url || `${path}?token=${token}`}`);
}

// Where a link on the page took the user (the client's own routing).
async function landedOn() {
  await page.waitForFunction(() => !location.pathname.startsWith("/reset-password") && !location.pathname.startsWith("/verify-email"));
  return [await page.evaluate(() => location.pathname)];
}

await step("open the client", async () => {
  await page.goto(`${base}/login`);
  await page.getByLabel("Username").waitFor();
});

if (phase === "forgot") {
  await step("ask for a reset link", async () => {
    await render("renderForgotPassword");
    await page.getByRole("heading", { name: "Forgot your password?" }).waitFor();
    await page.getByLabel("Email").fill(email);
    await page.getByRole("button", { name: "Send a reset link" }).click();
    await page.getByText("If an account has this address, a link is on its way").waitFor();
    await shot(page, shots, "forgot-sent");
    await page.getByRole("link", { name: "Back to log in" }).click();
    await page.getByRole("button", { name: "Log in" }).waitFor();
    out.navigated = [await page.evaluate(() => location.pathname)];
  });
} else {
  await step("choose a new password", async () => {
    await render("renderResetPassword", resetToken, `/reset-password?token=${resetToken}`);
    out.addressAfterOpen = await page.evaluate(() => location.pathname + location.search);
    await page.getByLabel("New password", { exact: true }).fill(newPassword);
    await page.getByLabel("New password again").fill(newPassword + "x");
    await page.getByRole("button", { name: "Change password" }).click();
    await page.getByText("The passwords do not match.").waitFor();
    await page.getByLabel("New password again").fill(newPassword);
    await page.getByRole("button", { name: "Change password" }).click();
    await page.getByRole("heading", { name: "Password changed" }).waitFor();
    await shot(page, shots, "reset-done");
    await page.getByRole("link", { name: "Log in" }).click();
    out.navigated = await landedOn();
  });

  await step("the same link again", async () => {
    await render("renderResetPassword", resetToken);
    await page.getByLabel("New password", { exact: true }).fill(newPassword);
    await page.getByLabel("New password again").fill(newPassword);
    await page.getByRole("button", { name: "Change password" }).click();
    await page.getByRole("heading", { name: "This link has expired" }).waitFor();
    out.reuseRefused = true;
  });

  await step("confirm an address", async () => {
    await render("renderVerifyEmail", verifyToken, `/verify-email?token=${verifyToken}`);
    await page.getByRole("heading", { name: "Email confirmed" }).waitFor();
    out.verifyAddressAfterOpen = await page.evaluate(() => location.pathname + location.search);
    await render("renderVerifyEmail", verifyToken);
    await page.getByRole("heading", { name: "Could not confirm this email" }).waitFor();
    await shot(page, shots, "verify-reused");
  });
}

out.pageErrors = pageErrors;
out.step = "done";
report(out);
await closeAll();
