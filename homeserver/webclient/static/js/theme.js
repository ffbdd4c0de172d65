// Dark and light themes (CSS variables on <html data-theme>); "system" follows the OS.

const KEY = "drocsid.theme";

export function currentTheme() {
  return localStorage.getItem(KEY) || "system";
}

export function applyTheme(choice = currentTheme()) {
  localStorage.setItem(KEY, choice);
  const dark = choice === "dark" || (choice === "system" && !matchMedia("(prefers-color-scheme: light)").matches);
  document.documentElement.dataset.theme = dark ? "dark" : "light";
  document.querySelector('meta[name="theme-color"]')?.setAttribute("content", dark ? "#1e1f22" : "#e3e5e8");
}
