/* Passkeys (WebAuthn) on eCitizen Passport pages: registration forms, sign-in buttons and
   browser autofill. No libraries; the server sends options as JSON and checks everything. */
(function () {
  "use strict";
  var CANCELLED = "The passkey request was cancelled or timed out. Try again.";
  var FAILED = "Something went wrong. Try again, or use another method.";

  function toBuffer(value) {
    var text = value.replace(/-/g, "+").replace(/_/g, "/");
    while (text.length % 4) { text += "="; }
    var binary = atob(text), bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer), binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeOptions(options) {
    options.challenge = toBuffer(options.challenge);
    if (options.user) { options.user.id = toBuffer(options.user.id); }
    ["excludeCredentials", "allowCredentials"].forEach(function (key) {
      (options[key] || []).forEach(function (c) { c.id = toBuffer(c.id); });
    });
    return options;
  }

  function encodeCredential(cred) {
    var r = cred.response, response = { clientDataJSON: toBase64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toBase64url(r.attestationObject);
      if (r.getTransports) { response.transports = r.getTransports(); }
    }
    if (r.authenticatorData) {
      response.authenticatorData = toBase64url(r.authenticatorData);
      response.signature = toBase64url(r.signature);
      if (r.userHandle) { response.userHandle = toBase64url(r.userHandle); }
    }
    return {
      id: cred.id, rawId: toBase64url(cred.rawId), type: cred.type, response: response,
      authenticatorAttachment: cred.authenticatorAttachment || null,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    };
  }

  function post(url, body) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": meta ? meta.content : "" },
      body: JSON.stringify(body || {})
    }).then(function (res) {
      return res.json().catch(function () { return { error: FAILED }; });
    });
  }

  function showError(scope, message) {
    var el = (scope && scope.querySelector("[data-passkey-error]")) || document.querySelector("[data-passkey-error]");
    if (el) { el.textContent = message; }
  }

  function finish(result, scope) {
    if (result && result.redirect) { window.location.assign(result.redirect); return; }
    showError(scope, (result && result.error) || FAILED);
  }

  function failure(scope) {
    return function (err) {
      if (err && err.name === "AbortError") { return; }
      showError(scope, err && err.name === "NotAllowedError" ? CANCELLED : FAILED);
    };
  }

  var autofill = null;
  // Set once a passkey answered: a second ceremony now would replace the challenge being checked.
  var finishing = false;

  function stopAutofill() {
    if (autofill) { autofill.abort(); autofill = null; }
  }

  // A button, or the autofill field (URLs from a button if it has none).
  function signIn(el, mediation, fallback) {
    var data = el.dataset.optionsUrl ? el.dataset : fallback.dataset;
    var scope = el.closest("[data-passkey-area]") || (fallback && fallback.closest("[data-passkey-area]")) || document;
    var signal;
    if (mediation) { autofill = new AbortController(); signal = autofill.signal; }
    return post(data.optionsUrl).then(function (options) {
      if (options.error) { throw { name: "Server", message: options.error }; }
      var request = { publicKey: decodeOptions(options.publicKey || options) };
      if (mediation) { request.mediation = mediation; request.signal = signal; }
      return navigator.credentials.get(request);
    }).then(function (cred) {
      finishing = true;
      return post(data.finishUrl, { credential: encodeCredential(cred), next: data.next || "" });
    }).then(function (result) {
      if (!(result && result.redirect)) { finishing = false; }
      finish(result, scope);
    }, function (err) {
      finishing = false;
      if (err && err.name === "Server") { showError(scope, err.message); return; }
      if (!mediation) { failure(scope)(err); }
    });
  }

  function register(form) {
    post(form.dataset.optionsUrl).then(function (opts) {
      var publicKey = decodeOptions(opts.publicKey || opts);
      publicKey.extensions = Object.assign({}, publicKey.extensions, { credProps: true });
      return navigator.credentials.create({ publicKey: publicKey });
    }).then(function (cred) {
      var name = form.elements.name ? form.elements.name.value : "";
      return post(form.dataset.finishUrl, { name: name, credential: encodeCredential(cred) });
    }).then(function (result) { finish(result, form); }, failure(form));
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.PublicKeyCredential) {
      document.querySelectorAll("[data-passkey]").forEach(function (el) { el.hidden = true; });
      document.querySelectorAll("[data-passkey-unsupported]").forEach(function (el) { el.hidden = false; });
      return;
    }
    document.querySelectorAll('form[data-passkey="register"]').forEach(function (form) {
      form.addEventListener("submit", function (event) { event.preventDefault(); register(form); });
    });
    var buttons = document.querySelectorAll('[data-passkey="signin"]');
    buttons.forEach(function (button) {
      button.addEventListener("click", function () {
        if (finishing) { return; }
        stopAutofill();
        signIn(button);
      });
    });
    var field = document.querySelector("input[data-passkey-autofill], input[autocomplete~=webauthn]");
    var usable = field && (field.dataset.optionsUrl || buttons.length);
    if (usable && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (available) { signIn(field, "conditional", buttons[0]); }
      }, function () {});
    }
  });
})();
