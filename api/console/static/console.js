// ghost-engine console: the submit form. Vanilla JS, no build step. Values reach the page through
// textContent only, never as HTML.
"use strict";

(function () {
  const form = document.getElementById("submit-form");
  if (!form) return;
  const FIELDS = ["prompt", "style", "seed", "rooms"];
  const formError = document.getElementById("form-error");
  const button = document.getElementById("submit-button");

  function numberOrText(value) {
    // Send what was typed: digits as a number, anything else as text, so the API's own words say why.
    const text = value.trim();
    if (text === "") return undefined;
    return /^-?\d+$/.test(text) ? Number(text) : text;
  }

  function clearErrors() {
    formError.hidden = true;
    formError.textContent = "";
    for (const name of FIELDS) {
      const slot = document.getElementById(name + "-error");
      slot.hidden = true;
      slot.textContent = "";
      for (const input of form.querySelectorAll("[name='" + name + "']")) input.removeAttribute("aria-invalid");
    }
  }

  function showFieldErrors(fields) {
    let first = null;
    const leftover = [];
    for (const [name, messages] of Object.entries(fields || {})) {
      const text = Array.isArray(messages) ? messages.join(" ") : JSON.stringify(messages);
      const slot = FIELDS.includes(name) ? document.getElementById(name + "-error") : null;
      if (!slot) { leftover.push(name + ": " + text); continue; }
      slot.textContent = text;
      slot.hidden = false;
      const input = form.querySelector("[name='" + name + "']:checked") || form.querySelector("[name='" + name + "']");
      for (const each of form.querySelectorAll("[name='" + name + "']")) each.setAttribute("aria-invalid", "true");
      if (!first) first = input;
    }
    return { first, leftover };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const body = { prompt: form.elements.prompt.value };
    const style = form.querySelector("[name='style']:checked");
    if (style) body.style = style.value;
    for (const name of ["seed", "rooms"]) {
      const value = numberOrText(form.elements[name].value);
      if (value !== undefined) body[name] = value;
    }
    button.disabled = true;
    button.textContent = "Submitting…";
    try {
      const response = await fetch(form.getAttribute("action"), {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({}));
      if (response.status === 202 && answer.jobId) {
        window.location.assign(form.dataset.jobsUrl + encodeURIComponent(answer.jobId));
        return;
      }
      const error = answer.error || { message: "The API answered " + response.status + "." };
      const { first, leftover } = showFieldErrors(error.details && error.details.fields);
      if (first) {
        if (leftover.length) { formError.textContent = leftover.join("; "); formError.hidden = false; }
        first.focus();
      } else {
        formError.textContent = error.message + (error.code ? " (" + error.code + ")" : "");
        formError.hidden = false;
        formError.focus();
      }
    } catch (err) {
      formError.textContent = "Could not reach the API: " + err.message;
      formError.hidden = false;
      formError.focus();
    } finally {
      button.disabled = false;
      button.textContent = "Generate";
    }
  });
})();
