%# The tags and sleep-schedule dialogs of both services' workers pages (common.js: workerDialogs).
<dialog id="tags-dialog">
  <form method="dialog">
    <h2>Tags of <span id="tags-worker"></span></h2>
    <p class="muted small">Comma-separated. They replace the worker's own, also after it restarts.</p>
    <input id="tags-input" maxlength="2000" aria-label="tags">
    <div class="dialog-buttons"><button value="cancel" class="link">Cancel</button>
      <button value="ok" class="primary" id="tags-save">Save</button></div>
  </form>
</dialog>
<dialog id="schedule-dialog">
  <form method="dialog">
    <h2>Sleep schedule of <span id="schedule-worker"></span></h2>
    <p class="muted small">Asleep from the start to the end time on the days ticked ({{where}} local time);
      an end before the start runs past midnight.</p>
    <label><input type="checkbox" id="schedule-active"> Active</label>
    <div class="days" id="schedule-days">
      % for d in ("mo", "tu", "we", "th", "fr", "sa", "su"):
      <label><input type="checkbox" value="{{d}}"> {{d}}</label>
      % end
    </div>
    <label>From <input type="time" id="schedule-start"></label>
    <label>to <input type="time" id="schedule-end"></label>
    <div class="dialog-buttons"><button value="cancel" class="link">Cancel</button>
      <button value="ok" class="primary" id="schedule-save">Save</button></div>
  </form>
</dialog>
