// cbcc console: the live event feed (server-sent events). No inline script anywhere (CSP
// script-src 'self'); forms work without JavaScript, htmx only refreshes parts of pages.
(function () {
  "use strict";
  function liveFeed() {
    var body = document.getElementById("feed");
    if (!body || !window.EventSource) { return; }
    var state = document.getElementById("feed-state");
    var src = new EventSource(body.getAttribute("data-stream"));
    src.addEventListener("open", function () {
      if (state) { state.textContent = body.getAttribute("data-live"); }
      body.setAttribute("data-connected", "1");
    });
    src.addEventListener("error", function () {
      if (state) { state.textContent = body.getAttribute("data-offline"); }
    });
    src.addEventListener("row", function (ev) {
      var tmp = document.createElement("tbody");
      tmp.innerHTML = ev.data;  // rendered and escaped by the server
      while (tmp.lastElementChild) {
        var row = tmp.lastElementChild;
        row.classList.add("new");
        body.insertBefore(row, body.firstElementChild);
      }
      while (body.children.length > 200) { body.removeChild(body.lastElementChild); }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", liveFeed);
  } else {
    liveFeed();
  }
})();
