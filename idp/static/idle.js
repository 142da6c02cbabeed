/* Warn before an idle sign-out and let the resident stay signed in without losing the page
   (WCAG 2.2.1 Timing Adjustable). Without JavaScript the pages work as before. */
(function () {
  'use strict';
  var box = document.getElementById('idle-warning');
  if (!box || !window.fetch || !window.FormData) { return; }
  var idle = parseInt(box.getAttribute('data-idle-seconds'), 10) * 1000;
  var notice = Math.min(120000, idle / 2);
  var form = box.querySelector('form');
  var timer = null;
  var before = null;

  function arm() {
    window.clearTimeout(timer);
    timer = window.setTimeout(warn, idle - notice);
  }

  function warn() {
    before = document.activeElement;
    box.hidden = false;
    form.querySelector('button').focus();
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    window.fetch(form.action, {method: 'POST', body: new FormData(form), credentials: 'same-origin',
                               headers: {'X-Requested-With': 'fetch'}, redirect: 'manual'})
      .then(function (response) {
        if (response.status !== 204) { window.location.reload(); return; }
        box.hidden = true;
        if (before && before.focus) { before.focus(); }
        arm();
      })
      .catch(function () { window.location.reload(); });
  });
  arm();
}());
