% rebase('base.tpl', title=title, nav=nav, signed_in=signed_in, csrf=csrf, version=version, page_data=page_data, page='error')
<section class="card error-page">
  <h1>{{title}}</h1>
  <p id="error-message">{{message}}</p>
  <p><a href="/status">Back to the Manager</a></p>
</section>
