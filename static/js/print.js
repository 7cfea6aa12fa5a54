// A Print button for the service record. Without JavaScript the button stays
// hidden and the page tells the reader to use the browser's Print command.
document.querySelectorAll("[data-print-button]").forEach(function (button) {
  button.hidden = false;
  button.addEventListener("click", function () {
    window.print();
  });
});
