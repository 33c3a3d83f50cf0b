// Sign in, register, and the page a new account sees until an admin approves it.
import { post, signIn } from "./api.js";
import { act, alertBox, field, h } from "./dom.js";

export function authPage(main, page, notice) {
  if (page === "waiting") {
    main.append(h("section", { class: "auth card" },
      h("h1", {}, "Waiting for approval"),
      h("p", {}, "Your account was created. An administrator has to approve it before you can sign in."),
      h("p", {}, h("a", { href: "#/signin" }, "Back to sign in"))));
    return null;
  }
  const registering = page === "register";
  const alert = alertBox();
  const username = h("input", { name: "username", autocomplete: "username", required: true,
    maxlength: 200 });
  const email = h("input", { name: "email", type: "email", autocomplete: "email", required: true,
    maxlength: 320 });
  const password = h("input", { name: "password", type: "password", required: true, maxlength: 1024,
    autocomplete: registering ? "new-password" : "current-password" });
  const submit = h("button", { type: "submit", class: "primary" }, registering ? "Create account" : "Sign in");
  const form = h("form", { class: "stack", novalidate: false },
    field("Username", username),
    registering ? field("Email", email) : null,
    field("Password", password),
    alert, submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(submit, alert, async () => {
      if (registering) {
        const created = await post("/api/v2/auth/register", {
          username: username.value, email: email.value, password: password.value });
        if (!created.is_approved) {
          location.hash = "#/waiting";
          return;
        }
      }
      // A refused login says the same for a wrong password and an unapproved account.
      await signIn(username.value, password.value);
      location.hash = "#/servers";
    });
  });
  main.append(h("section", { class: "auth card" },
    h("h1", {}, registering ? "Create an account" : "Sign in to mcdash"),
    notice ? h("p", { class: "notice", role: "status" }, notice) : null,
    form,
    h("p", {}, registering
      ? h("a", { href: "#/signin" }, "I have an account")
      : h("a", { href: "#/register" }, "Create an account"))));
  username.focus();
  return null;
}
