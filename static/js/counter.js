/* The store counter's small enhancements; every page works without them.
 *
 * - Photo inputs open the tablet's camera (capture="environment"). A button
 *   shown only with JavaScript lets the clerk choose files instead.
 * - A form that came back with errors moves the focus to its error summary.
 */
(function () {
  "use strict";

  function cameraToggle() {
    var holder = document.querySelector("[data-camera-toggle]");
    if (!holder) { return; }
    var button = holder.querySelector("[data-camera-button]");
    var inputs = document.querySelectorAll('input[type="file"][capture]');
    if (!button || !inputs.length) { return; }
    holder.hidden = false;
    button.addEventListener("click", function () {
      var useFiles = button.getAttribute("aria-pressed") !== "true";
      button.setAttribute("aria-pressed", useFiles ? "true" : "false");
      Array.prototype.forEach.call(inputs, function (input) {
        if (useFiles) {
          input.removeAttribute("capture");
        } else {
          input.setAttribute("capture", "environment");
        }
      });
    });
  }

  function focusErrors() {
    var summary = document.getElementById("error-summary");
    if (summary) { summary.focus(); }
  }

  function init() {
    cameraToggle();
    focusErrors();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
