// Starts the API docs viewers of /docs (Swagger UI) and /redoc (ReDoc). It lives in a file of
// its own because the site's Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  var swagger = document.getElementById("swagger-ui");
  if (swagger && window.SwaggerUIBundle) {
    window.ui = window.SwaggerUIBundle({
      url: swagger.getAttribute("data-spec"),
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
      layout: "BaseLayout",
      showExtensions: true,
      persistAuthorization: false,
    });
  }
  var redoc = document.getElementById("redoc");
  if (redoc && window.Redoc) {
    window.Redoc.init(redoc.getAttribute("data-spec"), { hideDownloadButton: false }, redoc);
  }
})();
