/* Résorption — the site sheet's action forms on /carte: « Recenser », « Faire avancer »,
 * « Toujours d'actualité » (templates/carte/_fiche_formulaires.html).
 *
 * Each form goes to the server as the signed-in user, with the page's CSRF token (carte.js's
 * `api`): a census to the process record-census, phases to advance-resorption, a confirmation
 * to PATCH /carte/sites/<id>/confirmation with the sheet's version (If-Match). The server
 * checks everything; its French messages are shown beside the fields they name.
 */
(function () {
  "use strict";

  const carte = window.carte;
  const sheet = document.getElementById("fiche");
  if (!carte || !sheet) return;

  const FORMS = {
    recenser: ".fiche-recensement",
    "faire-avancer": ".fiche-phases",
    confirmer: ".fiche-confirmation",
  };

  function clearErrors(form) {
    form.querySelectorAll(".fr-input--error").forEach((input) => {
      input.classList.remove("fr-input--error");
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
    });
    form.querySelectorAll(".fr-error-text").forEach((node) => node.remove());
    const box = form.querySelector(".fiche-form-erreurs");
    box.className = "fiche-form-erreurs";
    box.textContent = "";
  }

  /* The server's problems: each beside its field when the form has it, all in the summary. */
  function showErrors(form, error) {
    clearErrors(form);
    const box = form.querySelector(".fiche-form-erreurs");
    const problems = (error.body && error.body.errors) || [];
    const items = [];
    for (const problem of problems) {
      const input = form.querySelector(`[name="${CSS.escape(problem.property)}"]`);
      let label = problem.property;
      if (input) {
        const feedback = document.createElement("div");
        feedback.className = "fr-error-text";
        feedback.id = `${input.id}-erreur`;
        feedback.textContent = problem.message;
        input.classList.add("fr-input--error");
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", feedback.id);
        input.insertAdjacentElement("afterend", feedback);
        const labelNode = form.querySelector(`label[for="${CSS.escape(input.id)}"]`);
        if (labelNode) label = labelNode.textContent.replace(/ \(obligatoire\)$/, "");
      }
      items.push(`<li>${carte.escapeHtml(label)} : ${carte.escapeHtml(problem.message)}</li>`);
    }
    box.className = "fiche-form-erreurs fr-alert fr-alert--sm fr-alert--error fr-py-1w fr-text--sm";
    // With the server's list, one line per field; its description repeats them by their raw names.
    const heading = items.length ? "Le serveur a refusé ces valeurs :" : error.message;
    box.innerHTML = `<p class="fr-mb-1v">${carte.escapeHtml(heading)}</p>${items.length ? `<ul class="fr-mb-0">${items.join("")}</ul>` : ""}`;
    box.focus();
  }

  function inputsOf(form) {
    const inputs = { site: Number(form.dataset.siteId) };
    for (const input of form.querySelectorAll("[name]")) {
      const value = input.value.trim();
      if (value === "") continue;
      inputs[input.name] = input.dataset.type === "integer" && /^-?\d+$/.test(value) ? parseInt(value, 10) : value;
    }
    return inputs;
  }

  async function execute(processId, inputs) {
    await carte.api(`/processes/${processId}/execution`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ inputs }),
    });
  }

  async function submit(form) {
    const siteId = form.dataset.siteId;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      let message;
      if (form.classList.contains("fiche-recensement")) {
        await execute("record-census", inputsOf(form));
        message = "Recensement enregistré.";
      } else if (form.classList.contains("fiche-phases")) {
        const { site, ...given } = inputsOf(form);
        const phases = {};
        for (const [name, value] of Object.entries(given)) phases[name.replace(/^phases\./, "")] = value;
        if (!Object.keys(phases).length) {
          showErrors(form, { message: "Datez au moins une phase achevée.", body: {} });
          return;
        }
        await execute("advance-resorption", { site, phases });
        message = "Phases enregistrées.";
      } else {
        const etag = sheet.querySelector(".fiche").dataset.etag;
        await carte.api(`/carte/sites/${encodeURIComponent(siteId)}/confirmation`, {
          method: "PATCH",
          headers: { "Content-Type": "application/json", "If-Match": etag },
          body: "{}",
        });
        message = "Site confirmé : toujours d'actualité.";
      }
      await carte.openSheet(siteId, message);
      carte.loadSites();
    } catch (e) {
      showErrors(form, e);
    } finally {
      button.disabled = false;
    }
  }

  sheet.addEventListener("click", (event) => {
    const action = event.target.closest("[data-action]");
    if (!action) return;
    if (FORMS[action.dataset.action]) {
      const message = sheet.querySelector(".fiche-message");
      if (message) {
        // The message of the previous action is not about this one.
        message.className = "fiche-message";
        message.textContent = "";
      }
      for (const [name, selector] of Object.entries(FORMS)) {
        const form = sheet.querySelector(selector);
        const opener = sheet.querySelector(`[data-action="${name}"]`);
        if (!form) continue;
        const open = name === action.dataset.action;
        form.classList.toggle("fr-hidden", !open);
        if (opener) opener.setAttribute("aria-expanded", String(open));
      }
      const form = sheet.querySelector(FORMS[action.dataset.action]);
      (form.querySelector("[name]:not([disabled])") || form.querySelector("button")).focus();
    } else if (action.dataset.action === "annuler-action") {
      const form = action.closest("form");
      clearErrors(form);
      form.reset();
      form.classList.add("fr-hidden");
      const opener = sheet.querySelector(`[aria-controls="${CSS.escape(form.id)}"]`);
      if (opener) {
        opener.setAttribute("aria-expanded", "false");
        opener.focus();
      }
    }
  });

  sheet.addEventListener("submit", (event) => {
    if (!event.target.classList.contains("fiche-action-form")) return;
    event.preventDefault();
    submit(event.target);
  });
})();
