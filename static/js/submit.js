/* The submit-a-repair form (templates/tickets/customer/submit.html), enhanced.
 *
 * Without this script the form works the same: a plain POST, errors shown by
 * the server, photos kept by the server. With it: a filter for the device
 * list, an IMEI check as you type, the "other device" and "return address"
 * inputs shown only when they apply, photo previews, and an upload progress
 * bar. Texts come translated from the page's data-* attributes.
 */
(function () {
  "use strict";

  var forEach = function (list, fn) { Array.prototype.forEach.call(list, fn); };

  function luhnValid(digits) {
    var total = 0;
    for (var i = 0; i < digits.length; i++) {
      var value = Number(digits.charAt(digits.length - 1 - i));
      if (i % 2 === 1) {
        value *= 2;
        if (value > 9) { value -= 9; }
      }
      total += value;
    }
    return total % 10 === 0;
  }

  function initImeiCheck(form) {
    var input = form.elements.namedItem("imei_or_serial");
    var hint = form.querySelector("[data-imei-check]");
    if (!input || !hint) { return; }
    var last = "";
    function update() {
      var value = input.value.replace(/[\s\-\/.]+/g, "");
      var text = "";
      var state = "";
      if (/^\d{15}$/.test(value)) {
        state = luhnValid(value) ? "ok" : "bad";
        text = state === "ok" ? form.dataset.imeiOk : form.dataset.imeiBad;
      }
      if (text !== last) {  // announce a change once, not on every key
        hint.textContent = text;
        hint.dataset.state = state;
        last = text;
      }
    }
    input.addEventListener("input", update);
    update();
  }

  function initDeviceFilter(form) {
    var box = form.querySelector("[data-device-filter]");
    var select = form.elements.namedItem("device_model");
    if (!box || !select) { return; }
    var search = box.querySelector("input");
    var status = box.querySelector("[data-device-filter-status]");
    // Hidden <option>s are not hidden in every browser: keep the full list and
    // rebuild the select from the matches instead.
    var original = Array.prototype.map.call(select.children, function (node) { return node.cloneNode(true); });
    box.hidden = false;
    search.addEventListener("input", function () {
      var terms = search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      var chosen = select.value;
      var count = 0;
      select.textContent = "";
      original.forEach(function (node) {
        if (node.tagName !== "OPTGROUP") {
          select.appendChild(node.cloneNode(true));  // "Choose your device", "My device is not listed"
          return;
        }
        var group = node.cloneNode(false);
        forEach(node.children, function (option) {
          var text = (node.label + " " + option.textContent).toLowerCase();
          var matches = terms.every(function (term) { return text.indexOf(term) !== -1; });
          if (matches) { count += 1; }
          if (matches || option.value === chosen) { group.appendChild(option.cloneNode(true)); }
        });
        if (group.children.length) { select.appendChild(group); }
      });
      select.value = chosen;
      status.textContent = terms.length ? form.dataset.filterCount.replace("{count}", count) : "";
    });
  }

  // Show ``block`` only while ``applies()``; never hide an input that shows an error.
  function showWhen(block, applies, controls) {
    if (!block) { return; }
    function update() { block.hidden = !applies() && !block.querySelector(".errorlist"); }
    forEach(controls, function (control) { control.addEventListener("change", update); });
    update();
  }

  function initConditionalFields(form) {
    var device = form.elements.namedItem("device_model");
    if (device) {
      showWhen(form.querySelector("[data-device-other]"), function () { return device.value === "other"; }, [device]);
    }
    var returns = form.querySelectorAll("input[name='return_method']");
    showWhen(form.querySelector("[data-return-address]"), function () {
      var checked = form.querySelector("input[name='return_method']:checked");
      return checked !== null && checked.value === "ship_back";
    }, returns);
  }

  function initPreviews(form) {
    forEach(form.querySelectorAll("input[type='file']"), function (input) {
      var list = form.querySelector("[data-preview-for='" + input.id + "']");
      if (!list || !window.URL || !URL.createObjectURL) { return; }
      var urls = [];
      input.addEventListener("change", function () {
        urls.forEach(function (url) { URL.revokeObjectURL(url); });
        urls = [];
        list.textContent = "";
        forEach(input.files, function (file) {
          if (!/^image\//.test(file.type)) { return; }
          var url = URL.createObjectURL(file);
          urls.push(url);
          var item = document.createElement("li");
          var img = document.createElement("img");
          img.src = url;
          img.alt = file.name;
          item.appendChild(img);
          list.appendChild(item);
        });
        list.hidden = urls.length === 0;
      });
    });
  }

  // Put the server's answer (the form again, with its errors) in place of this page.
  function showResponse(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    document.title = doc.title;
    document.body.replaceWith(document.adoptNode(doc.body));
    window.scrollTo(0, 0);
    init();
    var summary = document.getElementById("error-summary");
    (summary || document.getElementById("main") || document.body).focus();
  }

  function initUpload(form) {
    var box = form.querySelector("[data-upload-progress]");
    if (!box || !window.FormData || !window.XMLHttpRequest || !window.DOMParser) { return; }
    var bar = box.querySelector("progress");
    var status = box.querySelector("[data-upload-status]");
    var button = form.querySelector("button[type='submit']");
    var sending = false;

    function failed() {
      sending = false;
      button.disabled = false;
      box.hidden = true;
      status.textContent = "";
      var alert = form.querySelector("[data-upload-failed]");
      if (!alert) {
        alert = document.createElement("p");
        alert.className = "message message-error";
        alert.setAttribute("role", "alert");
        alert.setAttribute("data-upload-failed", "");
        box.parentNode.insertBefore(alert, box);
      }
      alert.textContent = form.dataset.failed;
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (sending) { return; }
      sending = true;
      button.disabled = true;
      box.hidden = false;
      bar.removeAttribute("value");  // indeterminate until the first progress event
      status.textContent = form.dataset.uploading;

      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      // Lets the confirmation page answer the redirect with an empty 204, so its
      // success message waits for the page load below.
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          bar.max = e.total;
          bar.value = e.loaded;
        }
      });
      xhr.upload.addEventListener("load", function () {
        bar.removeAttribute("value");
        status.textContent = form.dataset.processing;
      });
      xhr.addEventListener("load", function () {
        if (xhr.responseURL && xhr.responseURL !== form.action) {
          window.location.assign(xhr.responseURL);  // redirected: the ticket is open
        } else if (xhr.responseText) {
          showResponse(xhr.responseText);
        } else {
          failed();
        }
      });
      xhr.addEventListener("error", failed);
      xhr.addEventListener("abort", failed);
      xhr.addEventListener("timeout", failed);
      xhr.send(new FormData(form));
    });
  }

  function init() {
    var form = document.querySelector("[data-submit-form]");
    if (!form) { return; }
    initDeviceFilter(form);
    initConditionalFields(form);
    initImeiCheck(form);
    initPreviews(form);
    initUpload(form);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
