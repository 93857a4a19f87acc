-- The statements of resorption.lifecycle: the account functions of sql/205_accounts_lifecycle.sql.

-- name: submit_request
SELECT resorption.submit_access_request(%s, %s, %s, %s, %s)

-- name: requests_in_scope
SELECT r FROM resorption.access_requests_in_scope() r

-- name: decide_request
SELECT resorption.decide_access_request(%s, %s, %s, %s, %s, %s, %s, %s, %s)

-- name: users_in_scope
SELECT u FROM resorption.users_in_scope() u

-- name: user_in_scope
SELECT resorption.user_in_scope(%s)

-- name: update_user
SELECT resorption.update_user_in_scope(%s, %s, %s, %s)

-- name: account_link
SELECT resorption.account_link(%s)

-- name: use_link
SELECT resorption.use_account_link(%s, %s, %s)

-- name: request_reset
SELECT resorption.request_password_reset(%s, %s, %s, %s, %s)

-- name: my_account
SELECT resorption.my_account(%s)

-- name: accept_charter
SELECT resorption.accept_charter(%s)

-- name: update_profile
SELECT resorption.update_my_profile(%s)

-- name: create_token
SELECT resorption.create_my_token(%s, %s, %s, %s)

-- name: revoke_token
SELECT resorption.revoke_my_token(%s)

-- name: close_other_sessions
SELECT resorption.close_my_other_sessions(%s)

-- name: change_password
SELECT resorption.change_my_password(%s, %s)

-- name: set_subscriptions
SELECT resorption.set_my_subscriptions(%s)

-- name: departements
SELECT code, name FROM resorption.departements ORDER BY code
