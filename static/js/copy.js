/* Copy-to-clipboard buttons: <button data-copy="<id of the element to copy>" hidden>.
 *
 * The button stays hidden without JavaScript; the text itself is always
 * selectable. The outcome is announced in the [data-copy-status] element next
 * to the button, with the texts of data-copied and data-copy-failed.
 */
(function () {
  "use strict";

  function select(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function legacyCopy(node) {
    select(node);
    try {
      return document.execCommand("copy");
    } catch (error) {
      return false;
    }
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-copy]"), function (button) {
      var target = document.getElementById(button.dataset.copy);
      if (!target) { return; }
      var status = button.parentNode.querySelector("[data-copy-status]");
      button.hidden = false;
      button.addEventListener("click", function () {
        var text = target.textContent.trim();
        function done(copied) {
          if (!copied) { select(target); }
          if (status) { status.textContent = copied ? button.dataset.copied : button.dataset.copyFailed; }
        }
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(
            function () { done(true); },
            function () { done(legacyCopy(target)); }
          );
        } else {
          done(legacyCopy(target));
        }
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
