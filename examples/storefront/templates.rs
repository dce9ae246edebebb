//! The pages, as minijinja templates (auto-escaped HTML). Every field has a
//! label, every form is plain HTML (keyboard-usable, no script), and the
//! colours keep a contrast ratio above 7:1.

pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "layout.html",
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}Cartwright shop{% endblock %}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 52rem; padding: 1rem; color: #111; background: #fff; }
a { color: #0645ad; }
nav { display: flex; gap: 1rem; border-bottom: 1px solid #555; padding-bottom: .5rem; }
label { display: block; margin-top: .5rem; }
input, select, button { font-size: 1rem; padding: .3rem; }
button { background: #0b3d91; color: #fff; border: 0; border-radius: 4px; padding: .4rem .8rem; margin-top: .5rem; }
table { border-collapse: collapse; width: 100%; }
td, th { border-bottom: 1px solid #999; padding: .3rem; text-align: left; }
.error { color: #8b0000; font-weight: bold; }
.hint { color: #1d4d1d; }
</style>
</head>
<body>
<nav aria-label="Main">
<a href="/">Shop</a> <a href="/cart">Cart</a>
{% if signed_in %}<a href="/account">My orders</a>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{{ csrf }}"><button type="submit">Log out</button></form>
{% else %}<a href="/login">Log in</a> <a href="/signup">Sign up</a>{% endif %}
</nav>
<main>
{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
{% block main %}{% endblock %}
</main>
</body>
</html>"#,
    ),
    (
        "catalog.html",
        r#"{% extends "layout.html" %}
{% block main %}
<h1>Shop</h1>
<nav aria-label="Categories"><a href="/">Everything</a>
{% for c in categories %} <a href="/?category={{ c.id }}"{% if c.current %} aria-current="page"{% endif %}>{{ c.name }}</a>{% endfor %}
</nav>
<ul id="products">
{% for p in products %}<li><a href="/products/{{ p.id }}">{{ p.title }}</a> — {{ p.price }}</li>{% endfor %}
</ul>
{% endblock %}"#,
    ),
    (
        "product.html",
        r#"{% extends "layout.html" %}
{% block title %}{{ title }}{% endblock %}
{% block main %}
<h1>{{ title }}</h1>
<p>{{ price }}</p>
<form method="post" action="/cart/add">
<input type="hidden" name="csrf" value="{{ csrf }}">
<input type="hidden" name="variant" value="{{ variant }}">
<label for="quantity">Quantity</label>
<input id="quantity" name="quantity" type="number" min="1" max="99" value="1">
<button type="submit" id="add">Add to cart</button>
</form>
{% endblock %}"#,
    ),
    (
        "cart.html",
        r#"{% extends "layout.html" %}
{% block title %}Your cart{% endblock %}
{% block main %}
<h1>Your cart</h1>
{% if lines %}
<table>
<thead><tr><th scope="col">Item</th><th scope="col">Quantity</th><th scope="col">Discount</th><th scope="col">Total</th></tr></thead>
<tbody>
{% for l in lines %}<tr><td>{{ l.name }}</td><td>
<form method="post" action="/cart/update"><input type="hidden" name="csrf" value="{{ csrf }}"><input type="hidden" name="line" value="{{ l.line }}">
<label for="q-{{ l.line }}">Quantity of {{ l.name }}</label>
<input id="q-{{ l.line }}" name="quantity" type="number" min="0" max="99" value="{{ l.quantity }}"><button type="submit">Update</button></form>
</td><td>{{ l.discount }}</td><td>{{ l.total }}</td></tr>{% endfor %}
</tbody>
</table>
<p>Subtotal: {{ subtotal }} · Discounts: {{ discount }} · Shipping: {{ shipping }} · Tax: {{ tax }}</p>
<p><strong>Total: <span id="total">{{ total }}</span></strong></p>
<h2>Promotions</h2>
<ul>{% for p in promotions %}<li>{{ p }}</li>{% endfor %}</ul>
<ul>{% for h in hints %}<li class="hint">{{ h }}</li>{% endfor %}</ul>
<form method="post" action="/cart/coupon"><input type="hidden" name="csrf" value="{{ csrf }}">
<label for="code">Coupon code</label><input id="code" name="code" maxlength="64"><button type="submit">Apply</button></form>
<p><a href="/checkout" id="to-checkout">Check out</a></p>
{% else %}<p>Your cart is empty.</p>{% endif %}
{% endblock %}"#,
    ),
    (
        "checkout.html",
        r#"{% extends "layout.html" %}
{% block title %}Checkout{% endblock %}
{% block main %}
<h1>Checkout</h1>
<p>Total: {{ total }}</p>
<form method="post" action="/checkout">
<input type="hidden" name="csrf" value="{{ csrf }}">
<input type="hidden" name="key" value="{{ key }}">
<label for="email">Email</label><input id="email" name="email" type="email" required value="{{ email }}">
<label for="name">Full name</label><input id="name" name="name" required autocomplete="name">
<label for="line1">Street and number</label><input id="line1" name="line1" required autocomplete="address-line1">
<label for="city">City</label><input id="city" name="city" required autocomplete="address-level2">
<label for="postal">Postal code</label><input id="postal" name="postal" required autocomplete="postal-code">
<label for="country">Country code</label><input id="country" name="country" required maxlength="2" value="us" autocomplete="country">
<label for="method">Shipping</label><select id="method" name="method"><option value="standard">Standard</option><option value="express">Express</option><option value="test:ground">Test Ground (the carrier's live rate)</option></select>
<label for="token">Card (test gateway)</label>
<select id="token" name="token">
<option value="tok_visa">Visa (approved)</option>
<option value="tok_3ds">Visa with 3-D Secure</option>
<option value="tok_decline">Declined card</option>
</select>
<button type="submit" id="pay">Pay</button>
</form>
{% endblock %}"#,
    ),
    (
        "bank.html",
        r#"{% extends "layout.html" %}
{% block title %}Your bank: confirm the payment{% endblock %}
{% block main %}
<h1>Your bank (test): 3-D Secure</h1>
<p>Confirm the payment {{ reference }}.</p>
<form method="post" action="/bank/3ds/{{ reference }}">
<input type="hidden" name="key" value="{{ key }}">
<button type="submit" id="approve">Approve</button>
</form>
{% endblock %}"#,
    ),
    (
        "waiting.html",
        r#"{% extends "layout.html" %}
{% block main %}<h1>Waiting for your payment</h1><p>We are waiting for your bank. <a href="/checkout/return?key={{ key }}">Check again</a></p>{% endblock %}"#,
    ),
    (
        "order.html",
        r#"{% extends "layout.html" %}
{% block title %}Order {{ id }}{% endblock %}
{% block main %}
<h1>Order {{ id }}</h1>
<p>Status: <span id="status">{{ status }}</span> · Payment: {{ payment }}</p>
<p>Total: <span id="total">{{ total }}</span> · Refunded: <span id="refunded">{{ refunded }}</span></p>
<h2>Items</h2>
<table><thead><tr><th scope="col">Item</th><th scope="col">Quantity</th><th scope="col">Can be returned</th></tr></thead><tbody>
{% for l in lines %}<tr><td>{{ l.name }}</td><td>{{ l.quantity }}</td><td>{{ l.returnable }}</td></tr>{% endfor %}
</tbody></table>
{% if shipments %}<h2>Shipments</h2>
<table><thead><tr><th scope="col">Carrier</th><th scope="col">Tracking number</th><th scope="col">Where</th></tr></thead><tbody>
{% for s in shipments %}<tr data-shipment="{{ s.id }}"><td>{{ s.carrier }}</td><td class="tracking">{{ s.tracking }}</td><td class="parcel">{{ s.status }}</td></tr>{% endfor %}
</tbody></table>{% endif %}
{% if can_return %}<h2>Return items</h2>
<form method="post" action="/orders/{{ id }}/return" id="return-form">
<input type="hidden" name="csrf" value="{{ csrf }}">
<label for="return-line">Item</label><select id="return-line" name="line">{% for l in lines %}{% if l.returnable > 0 %}<option value="{{ l.id }}">{{ l.name }}</option>{% endif %}{% endfor %}</select>
<label for="return-quantity">How many</label><input id="return-quantity" name="quantity" type="number" min="1" value="1" required>
<label for="return-reason">Why</label><select id="return-reason" name="reason">
<option value="size_or_fit">Wrong size or fit</option><option value="no_longer_needed">No longer needed</option>
<option value="damaged">Arrived damaged</option><option value="defective">Does not work</option>
<option value="wrong_item">Not what I ordered</option><option value="not_as_described">Not as described</option><option value="other">Something else</option></select>
<label for="return-note">Anything to add?</label><input id="return-note" name="note">
<button type="submit" id="return-submit">Ask to return</button>
</form>{% endif %}
{% if charges %}<h2>To pay</h2>
<table><thead><tr><th scope="col">For</th><th scope="col">Amount</th><th scope="col">Status</th><th scope="col">Pay</th></tr></thead><tbody>
{% for c in charges %}<tr><td>{{ c.reason }}</td><td>{{ c.amount }}</td><td class="charge-state">{{ c.state }}</td><td>
{% if c.payable %}<form method="post" action="/orders/{{ id }}/charges/{{ c.id }}/pay"><input type="hidden" name="csrf" value="{{ csrf }}"><label for="token-{{ c.id }}">Card token</label><input id="token-{{ c.id }}" name="token" value="tok_visa" required><button type="submit" id="pay-{{ c.id }}">Pay {{ c.amount }}</button></form>{% endif %}
</td></tr>{% endfor %}</tbody></table>{% endif %}
{% if returns %}<h2>Return requests</h2>
<table><thead><tr><th scope="col">Units</th><th scope="col">Reason</th><th scope="col">Refund</th><th scope="col">Status</th></tr></thead><tbody>
{% for r in returns %}<tr><td>{{ r.units }}</td><td>{{ r.reason }}</td><td>{{ r.refund }}</td><td class="return-state">{{ r.state }}</td>
</tr>{% endfor %}
</tbody></table>{% endif %}
<h2>History</h2>
<ul>{% for h in history %}<li>{{ h }}</li>{% endfor %}</ul>
{% endblock %}"#,
    ),
    (
        "account.html",
        r#"{% extends "layout.html" %}
{% block main %}<h1>My orders</h1>
<ul>{% for o in orders %}<li><a href="/orders/{{ o.id }}">{{ o.id }}</a> — {{ o.total }} — {{ o.status }}</li>{% endfor %}</ul>{% endblock %}"#,
    ),
    (
        "form.html",
        r#"{% extends "layout.html" %}
{% block title %}{{ heading }}{% endblock %}
{% block main %}
<h1>{{ heading }}</h1>
{% if notice %}<p role="status">{{ notice }}</p>{% endif %}
<form method="post" action="{{ action }}">
<input type="hidden" name="csrf" value="{{ csrf }}">
{% for f in fields %}<label for="{{ f.name }}">{{ f.label }}</label><input id="{{ f.name }}" name="{{ f.name }}" type="{{ f.kind }}" value="{{ f.value }}" required>
{% endfor %}<button type="submit" id="submit">{{ heading }}</button>
</form>
{% endblock %}"#,
    ),
];
