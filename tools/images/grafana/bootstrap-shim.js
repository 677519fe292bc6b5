// Stand-in for public/vendor/bootstrap/bootstrap.js, which Grafana's Go module zip does not carry
// (module zips drop vendor/ trees) and which is not published on npm.
// Grafana 10's Angular start-up touches Bootstrap 2's jQuery plugins ($.fn.tooltip.defaults,
// $.fn.modal.Constructor...). Only Angular-era widgets use them; the lab's dashboards use React
// panels, so each plugin is defined as a no-op with the properties the start-up code reads.
import $ from 'jquery';

['tooltip', 'popover', 'typeahead', 'dropdown', 'modal', 'collapse', 'tab', 'button', 'alert'].forEach((name) => {
  function Constructor() {}
  Constructor.prototype.show = function () {};
  Constructor.prototype.hide = function () {};
  Constructor.prototype.enforceFocus = function () {};
  $.fn[name] = function () {
    return this;
  };
  $.fn[name].Constructor = Constructor;
  $.fn[name].defaults = {};
});
