// Herald portal: small enhancements; every page works without this script.
(function () {
  "use strict";

  // After a Test: the endpoint's state, its chart and its log as the page
  // at this address (with its log filters) now shows them.
  function refreshEndpoint() {
    return fetch(window.location.href, {
      credentials: "same-origin",
      headers: { "Accept": "text/html" }
    }).then(function (response) {
      return response.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      ["state-detail", "chart-panel", "log-panel"].forEach(function (id) {
        var here = document.getElementById(id), there = doc.getElementById(id);
        if (here && there) {
          here.innerHTML = there.innerHTML;
          here.hidden = there.hidden;
        }
      });
      var badge = document.getElementById("endpoint-state"), fresh = doc.getElementById("endpoint-state");
      if (badge && fresh) {
        badge.className = fresh.className;
        badge.textContent = fresh.textContent;
      }
      if (window.heraldTimes) { window.heraldTimes(); }
    }).catch(function () { /* a reload shows the same */ });
  }

  // The Test button: send the form with fetch and show the result in place.
  var testForm = document.getElementById("test-form");
  if (testForm && window.fetch && window.DOMParser) {
    testForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = document.getElementById("send-test");
      var result = document.getElementById("test-result");
      button.setAttribute("aria-busy", "true");
      button.disabled = true;
      result.hidden = false;
      result.innerHTML = '<p class="muted">Sending…</p>';
      fetch(testForm.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(testForm)),
        credentials: "same-origin",
        headers: { "Accept": "text/html" }
      }).then(function (response) {
        return response.text().then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("test-result");
          if (fresh) {
            result.innerHTML = fresh.innerHTML;
            if (window.heraldTimes) { window.heraldTimes(); }
            refreshEndpoint();
          } else {
            result.innerHTML = '<p><span id="test-status" class="status bad">not sent</span></p><pre id="test-response"></pre>';
            document.getElementById("test-response").textContent = "The portal answered " + response.status + ". Reload the page and try again.";
          }
        });
      }).catch(function (error) {
        result.innerHTML = '<p><span id="test-status" class="status bad">not sent</span></p><pre id="test-response"></pre>';
        document.getElementById("test-response").textContent = String(error);
      }).finally(function () {
        button.removeAttribute("aria-busy");
        button.disabled = false;
      });
    });
  }

  // The message page: while a delivery is pending (after a Resend, or on its
  // way), the status line and the attempts refresh in place, every 2 s for
  // up to two minutes; without this script, a reload shows the same.
  var live = document.querySelector("[data-live]");
  if (live && window.fetch && window.DOMParser) {
    var rounds = 0;
    var poll = function () {
      rounds += 1;
      fetch(window.location.href, {
        credentials: "same-origin",
        headers: { "Accept": "text/html" }
      }).then(function (response) {
        return response.text();
      }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        ["overall-status", "this-status", "attempts-panel"].forEach(function (id) {
          var here = document.getElementById(id), there = doc.getElementById(id);
          if (here && there) { here.innerHTML = there.innerHTML; }
        });
        if (window.heraldTimes) { window.heraldTimes(); }
        if (doc.querySelector("[data-live]") && rounds < 60) { setTimeout(poll, 2000); }
      }).catch(function () {
        if (rounds < 60) { setTimeout(poll, 5000); }
      });
    };
    setTimeout(poll, 1000);
  }

  // The endpoint URL, checked as it is typed (the server checks again on submit).
  var url = document.getElementById("url");
  var hint = document.getElementById("url-hint");
  var privateHost = /^(localhost|127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|169\.254\.|0\.|\[?::1\]?$|\[?f[cd][0-9a-f]{2}:|\[?fe80:)/i;
  function checkUrl() {
    var value = url.value.trim();
    var message = "", kind = "";
    if (value) {
      var parsed = null;
      try { parsed = new URL(value); } catch (e) { parsed = null; }
      if (!parsed) {
        message = "Not a complete URL yet: it starts with https:// and a host name."; kind = "bad";
      } else if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
        message = "The URL must start with https:// (or http://)."; kind = "bad";
      } else if (parsed.username || parsed.password) {
        message = "Put credentials in a custom header, not in the URL."; kind = "bad";
      } else if (parsed.hash) {
        message = "Remove the #fragment: it is never sent."; kind = "bad";
      } else if (privateHost.test(parsed.hostname)) {
        var loopback = /^(localhost|127\.|\[?::1\]?$)/i.test(parsed.hostname);
        var allowed = loopback ? url.dataset.loopbackAllowed === "true" : url.dataset.privateAllowed === "true";
        if (allowed) {
          message = "A local address: this server's operator allows it."; kind = "ok";
        } else {
          message = "This looks like a private or local address. Herald only delivers to public addresses unless the server's operator allows this network."; kind = "warn";
        }
      } else if (parsed.protocol === "http:") {
        message = "Consider https://: with http:// the events travel unencrypted."; kind = "warn";
      } else {
        message = "Looks good."; kind = "ok";
      }
    }
    hint.textContent = message;
    hint.className = "hint" + (kind ? " " + kind : "");
    url.setCustomValidity(kind === "bad" ? message : "");
  }
  if (url && hint) {
    url.addEventListener("input", checkUrl);
    if (url.value) { checkUrl(); }
  }

  // The date-format preview follows the select (each option carries its text).
  var format = document.getElementById("date_format");
  var preview = document.getElementById("date-preview");
  if (format && preview) {
    format.addEventListener("change", function () {
      var option = format.options[format.selectedIndex];
      if (option && option.dataset.preview) { preview.textContent = option.dataset.preview; }
    });
  }

  // Message format: picking a ready-made format shows its code; editing the
  // code makes it custom code.
  var formatSelect = document.getElementById("format");
  var code = document.getElementById("transformation_code");
  if (formatSelect && code) {
    formatSelect.addEventListener("change", function () {
      var source = document.getElementById("format-code-" + formatSelect.value);
      if (source) { code.value = (source.content || source).textContent; }
      if (formatSelect.value === "custom") { document.getElementById("code-box").open = true; }
    });
    code.addEventListener("input", function () {
      if (formatSelect.value !== "custom") { formatSelect.value = "custom"; }
    });
  }

  // Preview: what this endpoint would receive for an example, as the form
  // stands (nothing is sent or saved).
  var previewRow = document.getElementById("preview-row");
  var endpointForm = document.getElementById("endpoint-form");
  if (previewRow && endpointForm && window.fetch) {
    previewRow.hidden = false;
    var previewButton = document.getElementById("preview-button");
    previewButton.addEventListener("click", function () {
      var result = document.getElementById("preview-result");
      var target = document.getElementById("preview-target");
      var body = document.getElementById("preview-body");
      previewButton.disabled = true;
      result.hidden = false;
      target.textContent = "Running…";
      body.textContent = "";
      fetch("/portal/endpoints/preview", {
        method: "POST",
        body: new URLSearchParams(new FormData(endpointForm)),
        credentials: "same-origin",
        headers: { "Accept": "application/json" }
      }).then(function (response) {
        if (!response.ok) { throw new Error("The portal answered " + response.status + "."); }
        return response.json();
      }).then(function (answer) {
        if (!answer.ok) {
          target.textContent = "This code fails:";
          body.textContent = answer.error;
          body.className = "preview bad";
        } else if (answer.skipped) {
          target.textContent = answer.skipped;
          body.className = "preview";
        } else {
          target.textContent = answer.method + " " + answer.url;
          body.textContent = answer.body;
          body.className = "preview";
        }
      }).catch(function (error) {
        target.textContent = String(error);
      }).finally(function () {
        previewButton.disabled = false;
      });
    });
  }
  // Times: the server writes the exact UTC time (kept in the title, shown
  // on hover); the text becomes relative ("3 min ago", "in 2 h").
  function relative(then, now) {
    var seconds = Math.round((then - now) / 1000), a = Math.abs(seconds), text;
    if (isNaN(seconds)) { return null; }
    if (a < 45) { return seconds <= 0 ? "just now" : "in a few seconds"; }
    if (a < 90) { text = "1 min"; }
    else if (a < 3600) { text = Math.round(a / 60) + " min"; }
    else if (a < 86400) { text = Math.round(a / 3600) + " h"; }
    else if (a < 30 * 86400) { var d = Math.round(a / 86400); text = d + (d === 1 ? " day" : " days"); }
    else { return null; }
    return seconds < 0 ? text + " ago" : "in " + text;
  }
  window.heraldTimes = function () {
    var now = Date.now();
    Array.prototype.forEach.call(document.querySelectorAll("time.when"), function (t) {
      var text = relative(new Date(t.getAttribute("datetime")).getTime(), now);
      if (text) { t.textContent = text; } else { t.textContent = t.title; }
    });
  };
  window.heraldTimes();
  window.setInterval(window.heraldTimes, 30000);

  // Copy buttons: hidden without the script (the text is selectable, and a
  // click on an id selects it whole); with it, one click copies.
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return legacyCopy(text); });
    }
    return legacyCopy(text);
  }
  function legacyCopy(text) {
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("button.copy[data-copy]"), function (button) {
    var source = document.getElementById(button.dataset.copy);
    if (!source) { return; }
    var label = button.textContent;
    button.hidden = false;
    button.setAttribute("aria-label", label + ": " + (button.dataset.copy === "payload" ? "payload" : source.textContent.trim().slice(0, 12) + "…"));
    button.addEventListener("click", function () {
      copyText(source.textContent.trim()).then(function () {
        button.textContent = "Copied";
      }, function () {
        var range = document.createRange();
        range.selectNodeContents(source);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Selected: press Ctrl+C";
      }).finally(function () {
        window.setTimeout(function () { button.textContent = label; }, 2000);
      });
    });
  });
})();
