// SignedInMenus.jsx: the signed-in header's menus (React Aria's Menu and
// Popover): the account menu on wide screens, and on small ones one menu
// with the navigation too. Loaded with the first signed-in page, so a
// stranger's first load does not carry them.
import { useHref, useNavigate } from 'react-router';
import { Button, Menu, MenuItem, MenuTrigger, Popover, RouterProvider, Separator } from 'react-aria-components';
import { ChevronDown, LogOut, Menu as MenuIcon, Settings } from 'lucide-react';
import { useUnread } from '../lib/store.js';

export function SmallMenu({ items, user, logout }) {
  const lobbyUnread = useUnread('lobby');
  return (
    <MenuTrigger>
      <Button className="btn btn-ghost btn-icon-text nav-menu-button" aria-label="Menu">
        <MenuIcon aria-hidden="true" size={20} />
        {lobbyUnread > 0 && <span className="dot" aria-hidden="true" />}
      </Button>
      <Popover className="popover" placement="bottom end">
        <Menu className="menu" aria-label="Menu" onAction={(key) => key === 'logout' && logout()}>
          {items.map((it) => (
            <MenuItem key={it.to} id={it.to} href={it.to} className="menu-item">
              <it.icon aria-hidden="true" size={16} />
              <span>{it.label}</span>
              {it.room && lobbyUnread > 0 && <span className="count-badge">{lobbyUnread}</span>}
            </MenuItem>
          ))}
          <Separator className="menu-separator" />
          <MenuItem id="settings" href="/settings" className="menu-item">
            <Settings aria-hidden="true" size={16} />
            <span>Settings</span>
          </MenuItem>
          <MenuItem id="logout" className="menu-item">
            <LogOut aria-hidden="true" size={16} />
            <span>Log out {user.display_name}</span>
          </MenuItem>
        </Menu>
      </Popover>
    </MenuTrigger>
  );
}

export function UserMenu({ user, logout }) {
  return (
    <MenuTrigger>
      <Button className="btn btn-ghost user-button">
        <span className="avatar" aria-hidden="true">
          {(user.display_name || '?').trim().charAt(0).toUpperCase()}
        </span>
        <span className="whoami-name">{user.display_name}</span>
        <span className="sr-only">, account menu</span>
        <ChevronDown aria-hidden="true" size={16} />
      </Button>
      <Popover className="popover" placement="bottom end">
        <Menu className="menu" aria-label="Account" onAction={(key) => key === 'logout' && logout()}>
          <MenuItem id="who" className="menu-item menu-item-static" isDisabled textValue={user.email}>
            <span className="muted small">{user.email}</span>
          </MenuItem>
          <MenuItem id="settings" href="/settings" className="menu-item">
            <Settings aria-hidden="true" size={16} />
            <span>Settings</span>
          </MenuItem>
          <MenuItem id="logout" className="menu-item">
            <LogOut aria-hidden="true" size={16} />
            <span>Log out</span>
          </MenuItem>
        </Menu>
      </Popover>
    </MenuTrigger>
  );
}


/** Both, each shown at its widths by CSS; menu items navigate through React Router. */
export default function SignedInMenus({ items, user, logout }) {
  const navigate = useNavigate();
  return (
    <RouterProvider navigate={navigate} useHref={useHref}>
      <div className="nav-wide">
        <UserMenu user={user} logout={logout} />
      </div>
      <div className="nav-narrow">
        <SmallMenu items={items} user={user} logout={logout} />
      </div>
    </RouterProvider>
  );
}
