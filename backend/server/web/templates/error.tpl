% rebase('base.tpl', title=title, nav=nav, user=user, csrf=csrf, version=version, page_data=page_data, can_run_workers=can_run_workers, page='error')
<section class="card error-page">
  <h1>{{title}}</h1>
  <p id="error-message">{{message}}</p>
  <p><a href="/">Back to the jobs</a></p>
</section>
