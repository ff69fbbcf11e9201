% rebase('base.tpl', title=title, nav=nav, signed_in=signed_in, csrf=csrf, version=version, page_data=page_data, page='login')
<section class="card login">
  <h1>Flamenco Manager</h1>
  % if error:
  <p class="error" id="login-error" role="alert">{{error}}</p>
  % end
  % if has_password:
  <form method="post" action="/login">
    <input type="hidden" name="next" value="{{next_url}}">
    <label>Admin password
      <input name="password" id="password" type="password" autocomplete="current-password" required autofocus>
    </label>
    <button type="submit" class="primary" id="sign-in">Sign in</button>
  </form>
  % else:
  <p id="no-password">No admin password is set on this Manager yet. On its machine, run
    <code>flamenco-manager set-admin-password --data-dir DIR</code>, then sign in here.</p>
  % end
</section>
