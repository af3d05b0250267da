/* Papertide: upvote without a page reload.
 *
 * Vote buttons are ordinary forms (class "vote-form") that post to /papers/<id>/vote or
 * /unvote and come back to the page; this script, when it runs, sends the same post with
 * fetch (CSRF token in the X-CSRF-Token header, Accept: application/json), then updates the
 * count, the pressed state (aria-pressed) and the form's action from the answer
 * {"upvotes": n, "voted": bool}. When fetch fails or the server refuses (logged out, rate
 * limited), the form is submitted the ordinary way, so the server's page explains.
 * No inline scripts: the Content-Security-Policy allows scripts from 'self' only.
 */
(function () {
  "use strict";

  function csrfToken(form) {
    var input = form.querySelector('input[name="csrf_token"]');
    return input ? input.value : "";
  }

  function show(form, state) {
    var count = Number(state.upvotes);
    var unit = count === 1 ? "upvote" : "upvotes";
    form.setAttribute("action", state.voted ? form.dataset.unvote : form.dataset.vote);
    var button = form.querySelector(".vote-button");
    if (button) {
      button.setAttribute("aria-pressed", state.voted ? "true" : "false");
    }
    var counter = form.querySelector(".votes-count");
    if (counter) {
      counter.textContent = String(count);
    }
    var label = form.querySelector(".votes-unit");
    if (label) {
      label.textContent = unit;
    }
    var box = form.closest(".votes");
    if (box) {
      box.classList.toggle("votes-voted", Boolean(state.voted));
      box.setAttribute("title", count + " " + unit);
    }
  }

  function onSubmit(event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("vote-form")) {
      return;
    }
    if (!window.fetch || !form.dataset.vote) {
      return;
    }
    event.preventDefault();
    if (form.dataset.busy) {
      return;
    }
    form.dataset.busy = "1";
    fetch(form.getAttribute("action"), {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrfToken(form) }
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("vote refused: " + response.status);
        }
        return response.json();
      })
      .then(function (state) {
        delete form.dataset.busy;
        show(form, state);
      })
      .catch(function () {
        delete form.dataset.busy;
        form.submit();  // the ordinary post: the server's page says what went wrong
      });
  }

  document.addEventListener("submit", onSubmit);
})();
